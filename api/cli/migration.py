"""`gridflow migrate plan | run | revert`: move running cases to another version of their definition."""
from __future__ import annotations

import json
import sys

import click

from api.cli import render
from api.cli.common import engine_of, reports_errors

SHOWN = 50  # cases listed in a plain-text plan; --json has them all


@click.group(invoke_without_command=True)
@click.pass_context
def migrate(ctx):
    """Move running cases to another version of their definition (plan, run, revert).

    The database schema is upgraded by `gridflow db upgrade`."""
    if ctx.invoked_subcommand is None:
        click.echo("`gridflow migrate` moves running cases between definition versions: "
                   "`migrate plan KEY --from 1 --to 2`, `migrate run …`, `migrate revert CASE`.\n"
                   "To create or upgrade the database schema, run `gridflow db upgrade`.", err=True)
        ctx.exit(2)


def _versions(func):
    func = click.option("--map", "mapping", multiple=True, metavar="OLD=NEW",
                        help="Element OLD of the source version is NEW in the target (renamed elements).")(func)
    func = click.option("--to", "to_version", type=int, required=True, help="Version to move to.")(func)
    func = click.option("--from", "from_version", type=int, required=True, help="Version cases run on now.")(func)
    func = click.option("--case", "case_ids", type=int, multiple=True, help="Only these cases.")(func)
    func = click.option("--json", "as_json", is_flag=True, help="The verdicts as JSON.")(func)
    return click.argument("key")(func)


def _why(verdict) -> str:
    return "; ".join(r.en for r in verdict.reasons)


def _print(plan, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(plan.as_dict(), ensure_ascii=False, indent=1))
        return
    counts = plan.counts()
    shown = [v for v in plan.verdicts if not v.migratable or v.outcome != "planned"][:SHOWN]
    if shown:
        click.echo(render.table(["case", "status", "outcome", "why not / notes"],
                                [[v.case_id, v.status, v.outcome if v.outcome != "planned" else
                                  ("migratable" if v.migratable else "refused"),
                                  _why(v) or "; ".join(f"{n.kind} {n.element}" for n in v.notes)]
                                 for v in shown]))
    src, dst = plan.source, plan.target
    head = f"{plan.key} v{src['version']} ({src['content_hash'][:12]}) → v{dst['version']} ({dst['content_hash'][:12]})"
    if plan.dry_run:
        click.echo(f"{head}: {counts['cases']} running cases, {counts['migratable']} migratable, "
                   f"{counts['refused']} refused")
    else:
        click.echo(f"{head}: {counts['migrated']} migrated, {counts['refused']} refused, {counts['skipped']} "
                   f"skipped, {counts['conflict']} changed by another command meanwhile (run again), "
                   f"{counts['rechecked']} re-checked since the plan")
    if counts["reasons"]:
        click.echo("refusals: " + ", ".join(f"{code} {n}" for code, n in sorted(counts["reasons"].items())))


@migrate.command("plan")
@_versions
@click.pass_context
@reports_errors
def plan(ctx, key, from_version, to_version, mapping, case_ids, as_json):
    """Dry run: the verdict on every running case of KEY version --from; nothing is changed."""
    result = engine_of(ctx).migrations.plan(key, from_version, to_version, list(mapping),
                                            case_ids=list(case_ids) or None)
    _print(result, as_json)


@migrate.command("run")
@_versions
@click.option("--by", "actor", default="admin", show_default=True, help="Who migrates (recorded).")
@click.pass_context
@reports_errors
def run(ctx, key, from_version, to_version, mapping, case_ids, as_json, actor):
    """Migrate every migratable running case of KEY version --from, each in its own transaction."""
    migrations = engine_of(ctx).migrations
    bars = []

    def progress(done, total, verdict):
        if not bars:  # opened once the run is under way, so a refused command prints no empty bar
            bars.append(click.progressbar(length=total, label="migrating", file=sys.stderr).__enter__())
        bars[0].update(1)
    try:
        result = migrations.run(key, from_version, to_version, list(mapping), actor=actor,
                                case_ids=list(case_ids) or None, progress=progress)
    finally:
        if bars:
            bars[0].__exit__(None, None, None)
    _print(result, as_json)


@migrate.command("revert")
@click.argument("case_id", type=int)
@click.option("--by", "actor", default="admin", show_default=True, help="Who reverts (recorded).")
@click.pass_context
@reports_errors
def revert(ctx, case_id, actor):
    """Put CASE_ID back on the version it was migrated from (only if nothing happened to it since)."""
    done = engine_of(ctx).migrations.revert(case_id, actor=actor)
    click.echo(f"case {case_id}: back on {done['to']['key']} version {done['to']['version']} "
               f"(migration at event {done['reverted_seq']} reverted by event {done['event_seq']})")
