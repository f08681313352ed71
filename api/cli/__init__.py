"""`gridflow`: the command line for administrators and operators. Every error is one readable line.

One module per command group; `common` holds what they share (the engine from `--db`, JSON and date
options, errors as one line). This package only assembles them; no command module imports it back.
"""
from __future__ import annotations

import signal

import click

from api.cli import audit
from api.cli import cases
from api.cli import deadlines
from api.cli import definitions
from api.cli import demo
from api.cli import lists
from api.cli import registry
from api.cli import serve
from api.cli import webhooks
# (statistics: its command module here)
from api.cli import stats

# (console accounts: its command module here)
from api.cli import users

# (instance migration: its command module here)
from api.cli import migration


@click.group()
@click.option("--db", envvar="GRIDFLOW_DATABASE_URL", default=None,
              help="Database URL (default sqlite:///gridflow.db; PostgreSQL: postgresql+psycopg://...)")
@click.pass_context
def main(ctx, db):
    """GridFlow: the workflow engine for grid-based social governance (网格化服务管理)."""
    # Piped into `head` or a pager that quits early: stop quietly like any Unix tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


for command in (
    definitions.db, definitions.deploy, definitions.definitions,
    cases.case, cases.tasks, cases.task, cases.message,
    deadlines.deadlines, deadlines.timers, deadlines.calendar, deadlines.worker,
    demo.demo, registry.registry, lists.lists, lists.catalog,
    serve.serve, serve.token, serve.apikey, webhooks.webhooks, audit.audit,
    # (statistics)
    stats.stats,

    # (console accounts)
    users.users,

    # (instance migration)
    migration.migrate,
):
    main.add_command(command)
