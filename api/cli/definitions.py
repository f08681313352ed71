"""`gridflow db upgrade | deploy | definitions`: the schema and process definitions."""
from __future__ import annotations

from pathlib import Path

import click

from api.cli import render
from api.cli.common import engine_of, reports_errors

@click.group()
def db():
    """The database itself."""


@db.command("upgrade")
@click.pass_context
@reports_errors
def upgrade(ctx):
    """Create or upgrade the database schema."""
    engine = engine_of(ctx)
    click.echo(f"schema is current on {engine.url}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "deployer", default="admin", show_default=True, help="Who deploys (recorded).")
@click.option("--check", "check_only", is_flag=True, help="Run the deploy's checks only; store nothing.")
@click.pass_context
@reports_errors
def deploy(ctx, files, deployer, check_only):
    """Deploy BPMN/DMN files; unchanged content is a no-op, changed content the next version."""
    from engine.clock import SYSTEM_CLOCK
    uploads = {path.name: path.read_bytes() for path in files}
    if check_only:
        problems = engine_of(ctx).definitions.check(uploads)
        for p in problems:
            click.echo(f"  {p} [{p.code}]", err=True)
        click.echo(f"{len(problems)} problem(s); nothing was deployed" if problems else
                   "no problems: the files would deploy")
        ctx.exit(2 if problems else 0)
    for outcome in engine_of(ctx).definitions.deploy(uploads, deployer, SYSTEM_CLOCK):
        click.echo(str(outcome))


@click.command()
@click.option("--key", default=None, help="Only this process key.")
@click.pass_context
@reports_errors
def definitions(ctx, key):
    """List deployed definitions: key, version, content hash, deploy time, deployer."""
    rows = engine_of(ctx).definitions.list(key)
    if not rows:
        click.echo("no definitions deployed; run `gridflow deploy processes/*.bpmn`")
        return
    click.echo(render.table(["key", "version", "hash", "deployed at (UTC)", "by"],
                            [[d.key, d.version, d.content_hash[:12], render.when(d.deployed_at), d.deployed_by]
                             for d in rows]))
