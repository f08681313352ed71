"""`gridflow serve` (the HTTP API and the web console under gunicorn), `gridflow token` (a JWT for development) and
`gridflow apikey` (keys for the platform's system account)."""
from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from types import SimpleNamespace

import click

from api.cli.common import engine_of, reports_errors
from api.cli import render


@click.command()
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="gunicorn worker processes (about 2 per core).")
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="Address and port to listen on.")
@click.option("--timeout", type=click.IntRange(5, 600), default=30, show_default=True,
              help="Seconds a request may take before its worker is restarted.")
@click.pass_context
@reports_errors
def serve(ctx, workers, bind, timeout):
    """Serve the HTTP API with gunicorn. The timer service is not run here: run `gridflow worker` too."""
    from gunicorn.app.base import BaseApplication

    from engine.service import Engine

    # Upgrade the schema once, here, before workers start (each would otherwise race to do it).
    Engine(ctx.obj["db"]).close()
    url = ctx.obj["db"]
    if not os.environ.get("GRIDFLOW_JWT_KEY"):
        click.echo("warning: GRIDFLOW_JWT_KEY is not set; only API keys will be accepted", err=True)
    # Every worker counts its own requests; the metrics endpoint adds them up from this folder.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="gridflow-metrics-")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    if not os.environ.get("GRIDFLOW_CONSOLE_SECRET") and not os.environ.get("GRIDFLOW_JWT_KEY"):
        # One key for every worker, so a console session signed by one is read by the others (until restart).
        import secrets
        os.environ["GRIDFLOW_CONSOLE_SECRET"] = secrets.token_urlsafe(32)

    def worker_app():
        from api import console
        from api.http.app import create_app
        # No ping before each checkout: it was a round trip on every request, up to half of a read's. If the
        # database restarts, the request that meets a dead connection answers 503 and the pool is replaced.
        return console.register(create_app(Engine(url, migrate=False, pool_pre_ping=False)))

    def child_exit(_server, worker):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)

    class GridFlowServer(BaseApplication):
        def load_config(self):
            for key, value in {"bind": bind, "workers": workers, "timeout": timeout, "child_exit": child_exit,
                               "accesslog": None, "proc_name": "gridflow-api"}.items():
                self.cfg.set(key, value)

        def load(self):
            return worker_app()

    click.echo(f"serving the GridFlow API on http://{bind} with {workers} workers ({Engine.__module__}); "
               f"OpenAPI at /openapi.json, the console at /console/", err=True)
    GridFlowServer().run()


@click.command()
@click.option("--user", required=True, help="Who the token is for (recorded as the actor of their commands).")
@click.option("--role", required=True, type=click.Choice(["grid_worker", "grid_agency", "responsible_unit",
                                                          "process_admin", "auditor", "platform",
                                                          "county_government"]))
@click.option("--grid", default=None, help="A grid worker's grid code.")
@click.option("--unit", default=None, help="A responsible unit's code.")
@click.option("--level", default=None, type=click.Choice(["community", "township", "county", "city"]),
              help="A grid agency's level.")
@click.option("--area", default=None, help="A grid agency's division code (6, 9 or 12 digits); a county "
                                            "government's county code (6 digits).")
@click.option("--ttl", type=click.FloatRange(0.01, 24 * 30), default=8, show_default=True, help="Hours valid.")
@reports_errors
def token(user, role, grid, unit, level, area, ttl):
    """Issue a JWT for USER in ROLE, signed with GRIDFLOW_JWT_KEY (for development and testing)."""
    from engine.access.scopes import Principal, principal_problems

    from api.http.auth import issue_token
    fields = dict(user=user, role=role, grid_code=grid, unit=unit, level=level, area_code=area)
    problems = principal_problems(SimpleNamespace(**fields))  # every problem at once, not the first
    if problems:
        raise click.UsageError("; ".join(problems))
    try:
        click.echo(issue_token(Principal(**fields), os.environ.get("GRIDFLOW_JWT_KEY", ""), timedelta(hours=ttl)))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
def apikey():
    """API keys for the platform's system account."""


@apikey.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. '12345 hotline bridge'.")
@click.option("--user", default="platform", show_default=True, help="The system account's user name.")
@click.option("--by", "who", default="admin", show_default=True)
@click.pass_context
@reports_errors
def apikey_create(ctx, name, user, who):
    """Create a key; it is printed once and only its hash is kept."""
    key, view = engine_of(ctx).api_keys.create(name, user=user, by=who)
    click.echo(key)
    click.echo(f"key {view.id} ({view.prefix}…) for {view.user}: keep it secret; it is not shown again", err=True)


@apikey.command("list")
@click.pass_context
@reports_errors
def apikey_list(ctx):
    """Keys with their start, account and state."""
    rows = engine_of(ctx).api_keys.list()
    click.echo(render.table(["id", "name", "starts", "user", "created (CST)", "by", "revoked (CST)"],
                            [[k.id, k.name, k.prefix + "…", k.user, render.when(k.created_at), k.created_by,
                              render.when(k.revoked_at) if k.revoked_at else ""] for k in rows])
               if rows else "no API keys")


@apikey.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
@reports_errors
def apikey_revoke(ctx, key_id):
    """Revoke a key (every web worker stops accepting it within 30 seconds)."""
    view = engine_of(ctx).api_keys.revoke(key_id)
    click.echo(f"key {view.id} ({view.prefix}…) revoked")
