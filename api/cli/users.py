"""`gridflow users`: accounts for people who sign in to the web console. Each account carries the role and
scope of the API's principal (a worker's grid, an agency's level and area, a unit's code)."""
from __future__ import annotations

import os

import click

from api.cli import render
from api.cli.common import engine_of, reports_errors

ROLES = ["grid_worker", "grid_agency", "responsible_unit", "process_admin", "auditor", "platform",
         "county_government"]
PASSWORD_ENV = "GRIDFLOW_PASSWORD"


def _password(given: str | None) -> str:
    """From --password-stdin / $GRIDFLOW_PASSWORD, else asked twice without echo."""
    if given is not None:
        return given
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


def _stdin_password(use_stdin: bool) -> str | None:
    if not use_stdin:
        return None
    line = click.get_text_stream("stdin").readline()
    return line.rstrip("\r\n")


@click.group()
def users():
    """Console accounts: add, list, disable, enable, reset a password, show the sign-in log."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--grid", default=None, help="A grid worker's grid code.")
@click.option("--unit", default=None, help="A responsible unit's code.")
@click.option("--level", default=None, type=click.Choice(["community", "township", "county", "city"]),
              help="A grid agency's level.")
@click.option("--area", default=None, help="A grid agency's division code (6, 9 or 12 digits); a county "
                                            "government's county code.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin "
                                                      f"(else ${PASSWORD_ENV}, else a prompt).")
@click.option("--by", "who", default="admin", show_default=True, help="Who adds the account (recorded).")
@click.pass_context
@reports_errors
def users_add(ctx, name, role, grid, unit, level, area, password_stdin, who):
    """Add NAME, who signs in with the given role and scope."""
    password = _password(_stdin_password(password_stdin))
    view = engine_of(ctx).accounts.add(name, role, password, grid_code=grid, unit=unit, level=level,
                                       area_code=area, by=who)
    click.echo(f"account {view.name} ({view.role}{_scope(view)}) added")


@users.command("list")
@click.pass_context
@reports_errors
def users_list(ctx):
    """Accounts with their role, scope and state."""
    rows = engine_of(ctx).accounts.list()
    if not rows:
        click.echo("no accounts; add one with `gridflow users add NAME --role ...`")
        return
    click.echo(render.table(["name", "role", "scope", "state", "last sign-in (CST)", "created (CST)", "by"],
                            [[a.name, a.role, _scope(a).strip(" ,") or "-", _state(a),
                              render.when(a.last_sign_in_at) if a.last_sign_in_at else "",
                              render.when(a.created_at), a.created_by] for a in rows]))


@users.command("disable")
@click.argument("name")
@click.option("--by", "who", default="admin", show_default=True)
@click.pass_context
@reports_errors
def users_disable(ctx, name, who):
    """NAME can no longer sign in; their open sessions end at once."""
    engine_of(ctx).accounts.disable(name, by=who)
    click.echo(f"account {name} disabled")


@users.command("enable")
@click.argument("name")
@click.option("--by", "who", default="admin", show_default=True)
@click.pass_context
@reports_errors
def users_enable(ctx, name, who):
    """NAME may sign in again."""
    engine_of(ctx).accounts.enable(name, by=who)
    click.echo(f"account {name} enabled")


@users.command("reset-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@click.option("--by", "who", default="admin", show_default=True)
@click.pass_context
@reports_errors
def users_reset_password(ctx, name, password_stdin, who):
    """Set a new password for NAME (clears a lock-out, ends their sessions)."""
    password = _password(_stdin_password(password_stdin))
    engine_of(ctx).accounts.reset_password(name, password, by=who)
    click.echo(f"password of {name} reset; their sessions have ended")


@users.command("log")
@click.option("--user", default=None, help="Only this account's events.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_context
@reports_errors
def users_log(ctx, user, limit):
    """The console's sign-in log: sign-ins, failures, lock-outs, sign-outs, newest first."""
    rows = engine_of(ctx).accounts.events(user, limit=limit)
    click.echo(render.table(["at (CST)", "user", "event", "address", "detail"],
                            [[render.when(e.at), e.user, e.event, e.address or "", e.detail] for e in rows])
               if rows else "no sign-in events")


def _scope(a) -> str:
    parts = [f"grid {a.grid_code}" if a.grid_code else "", f"unit {a.unit}" if a.unit else "",
             f"{a.level} {a.area_code}" if a.level else (f"area {a.area_code}" if a.area_code else "")]
    text = ", ".join(p for p in parts if p)
    return f", {text}" if text else ""


def _state(a) -> str:
    if a.disabled_at:
        return "disabled"
    if a.locked_until:
        return f"locked until {render.when(a.locked_until)}"
    return "active"
