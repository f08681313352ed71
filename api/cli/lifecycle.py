"""`gridflow case suspend | resume | withdraw | duplicate | duplicates`: the lifecycle commands on a case
(挂账, 撤回, 重复件), acted on from a terminal."""
from __future__ import annotations

import click

from api.cli import render
from api.cli.common import engine_of, reports_errors


def _show(engine, case_id: int) -> None:
    click.echo(render.case(engine.queries.case(case_id)))


@click.command("suspend")
@click.argument("case_id", type=int)
@click.option("--reason", required=True, help="Why the matter cannot be handled for now (required).")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_suspend(ctx, case_id, reason, actor):
    """挂账: take a matter off the clock; its deadlines keep the time they had left."""
    engine = engine_of(ctx)
    engine.cases.suspend(case_id, reason, actor=actor, role="grid_agency")
    _show(engine, case_id)


@click.command("resume")
@click.argument("case_id", type=int)
@click.option("--note", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_resume(ctx, case_id, note, actor):
    """Resume a suspended matter: the status it left, its deadlines re-armed with the time left."""
    engine = engine_of(ctx)
    engine.cases.resume(case_id, note, actor=actor, role="grid_agency")
    _show(engine, case_id)


@click.command("withdraw")
@click.argument("case_id", type=int)
@click.option("--reason", required=True, help="Why the report is withdrawn (required).")
@click.option("--role", type=click.Choice(["platform", "grid_agency"]), default="platform", show_default=True,
              help="The platform before dispatch, for the reporter; the agency after.")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_withdraw(ctx, case_id, reason, role, actor):
    """Withdraw a report (撤回): the case ends cancelled, with the reason."""
    engine = engine_of(ctx)
    engine.cases.withdraw(case_id, reason, actor=actor, role=role)
    _show(engine, case_id)


@click.command("duplicate")
@click.argument("case_id", type=int)
@click.option("--of", "master_id", type=int, required=True, help="The open matter this report duplicates.")
@click.option("--note", default="")
@click.option("--role", type=click.Choice(["platform", "grid_agency", "grid_worker"]), default="platform",
              show_default=True)
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_duplicate(ctx, case_id, master_id, note, role, actor):
    """Link CASE_ID as a duplicate (重复件) of an open matter; it is closed with it."""
    engine = engine_of(ctx)
    engine.cases.link_duplicate(case_id, master_id, note, actor=actor, role=role)
    _show(engine, case_id)


@click.command("duplicates")
@click.argument("case_id", type=int)
@click.pass_context
@reports_errors
def case_duplicates(ctx, case_id):
    """Open matters of the same grid and sub-category reported shortly before CASE_ID: duplicates to check."""
    engine = engine_of(ctx)
    found = engine.queries.duplicate_candidates(case_id)
    if not found:
        click.echo("no likely duplicates")
    for c in found:
        click.echo(f"case {c.id}  {c.status:<12} {c.grid_code}  {c.sub_category}  {c.title}")


@click.command("urgent")
@click.argument("case_id", type=int)
@click.option("--level", "urgency", type=click.Choice(["urgent", "emergency"]), default="urgent", show_default=True)
@click.option("--reason", required=True)
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_urgent(ctx, case_id, urgency, reason, actor):
    """加急: raise the urgency; a running handling deadline is recomputed from the time-limit table."""
    engine = engine_of(ctx)
    engine.cases.set_urgency(case_id, urgency, reason, actor=actor, role="grid_agency")
    _show(engine, case_id)


COMMANDS = (case_urgent, case_suspend, case_resume, case_withdraw, case_duplicate, case_duplicates)
