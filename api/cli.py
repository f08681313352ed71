"""`gridflow`: the command line for administrators and operators. Every error is one readable line."""
from __future__ import annotations

if __name__ == "__main__":
    # `python -m api.cli`: run the package's module instead, the one the command-group modules import, so
    # it is not loaded twice under two names.
    from api.cli import main as _main
    raise SystemExit(_main())

import json
import os
import signal
import sys
from functools import wraps
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError

from engine.bundle import DefinitionRejected
from engine.errors import EngineError
from engine.service import Engine

from . import render

PROJECT_PROCESSES = Path(__file__).resolve().parent.parent / "processes"


def _engine(ctx) -> Engine:
    if "engine" not in ctx.obj:
        ctx.obj["engine"] = Engine(ctx.obj["db"])
    return ctx.obj["engine"]


def _json_object(text: str, what: str = "--data") -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError(f"{what} must be a JSON object, like '{{\"title\": \"...\"}}'")
    return value


def reports_errors(func):
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DefinitionRejected as exc:
            click.echo("error: deploy refused, nothing was changed:", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(2)
        except EngineError as exc:
            click.echo(f"error ({exc.code}): {exc}", err=True)
            sys.exit(1)
        except OperationalError as exc:
            click.echo(f"error (database): {str(exc.orig).strip()}; check --db / GRIDFLOW_DATABASE_URL", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click reports bad usage itself
        except Exception as exc:  # a defect: say so in one line; GRIDFLOW_DEBUG=1 shows the traceback
            if os.environ.get("GRIDFLOW_DEBUG"):
                raise
            click.echo(f"error (internal): {type(exc).__name__}: {exc} — please report it; "
                       "rerun with GRIDFLOW_DEBUG=1 for details", err=True)
            sys.exit(70)
    return wrapper


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


@main.command()
@click.pass_context
@reports_errors
def migrate(ctx):
    """Create or upgrade the database schema."""
    engine = _engine(ctx)
    click.echo(f"schema is current on {engine.url}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "deployer", default="admin", show_default=True, help="Who deploys (recorded).")
@click.pass_context
@reports_errors
def deploy(ctx, files, deployer):
    """Deploy BPMN/DMN files; unchanged content is a no-op, changed content the next version."""
    from engine.clock import SYSTEM_CLOCK
    uploads = {path.name: path.read_bytes() for path in files}
    for outcome in _engine(ctx).definitions.deploy(uploads, deployer, SYSTEM_CLOCK):
        click.echo(str(outcome))


@main.command()
@click.option("--key", default=None, help="Only this process key.")
@click.pass_context
@reports_errors
def definitions(ctx, key):
    """List deployed definitions: key, version, content hash, deploy time, deployer."""
    rows = _engine(ctx).definitions.list(key)
    if not rows:
        click.echo("no definitions deployed; run `gridflow deploy processes/*.bpmn`")
        return
    click.echo(render.table(["key", "version", "hash", "deployed at (UTC)", "by"],
                            [[d.key, d.version, d.content_hash[:12], render.when(d.deployed_at), d.deployed_by]
                             for d in rows]))


@main.group()
def case():
    """Start, list and show cases."""


@case.command("start")
@click.argument("key")
@click.option("--data", default="{}", help="Matter data as JSON (title, grid_code, category, ...).")
@click.option("--version", type=int, default=None, help="Pin a version instead of the latest.")
@click.option("--actor", default="grid-worker", show_default=True)
@click.option("--role", default="grid_worker", show_default=True)
@click.pass_context
@reports_errors
def case_start(ctx, key, data, version, actor, role):
    """Start a case of process KEY."""
    engine = _engine(ctx)
    case_id = engine.cases.start(key, _json_object(data), actor=actor, role=role, version=version)
    click.echo(render.case(engine.queries.case(case_id)))


@case.command("show")
@click.argument("case_id", type=int)
@click.pass_context
@reports_errors
def case_show(ctx, case_id):
    """A case as it stands, with its open tasks and its timeline."""
    engine = _engine(ctx)
    click.echo(render.case(engine.queries.case(case_id)))
    click.echo(render.timeline(engine.queries.history(case_id)))


@case.command("list")
@click.option("--status", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
@reports_errors
def case_list(ctx, status, limit):
    """List cases."""
    rows = _engine(ctx).queries.cases(status=status, limit=limit)
    click.echo(render.table(["id", "process", "v", "status", "level", "grid", "unit", "title"],
                            [[c.id, c.process_key, c.definition_version, c.status, c.level or "", c.grid_code or "",
                              c.unit or "", c.title] for c in rows]) if rows else "no cases")


@main.command()
@click.option("--role", default=None, help="grid_worker, grid_agency or responsible_unit")
@click.option("--unit", default=None)
@click.option("--grid", default=None)
@click.option("--level", default=None, help="Agency level: community, township, county, city")
@click.option("--case", "case_id", type=int, default=None)
@click.option("--all", "show_all", is_flag=True, help="Include finished tasks.")
@click.pass_context
@reports_errors
def tasks(ctx, role, unit, grid, level, case_id, show_all):
    """List open human tasks."""
    rows = _engine(ctx).queries.tasks(role=role, unit=unit, grid_code=grid, agency_level=level, case_id=case_id,
                                      open_only=not show_all, limit=1000)
    click.echo(render.tasks(rows) if rows else "no open tasks")


@main.group()
def task():
    """Act on a human task: complete, sign for (签收), return (退单)."""


def _task_role(ctx, task_id, role):
    return role or _engine(ctx).queries.task(task_id).role


@task.command("complete")
@click.argument("task_id", type=int)
@click.option("--data", default="{}", help="The task's form data as JSON.")
@click.option("--actor", default="cli")
@click.option("--role", default=None, help="Acting role (default: the task's).")
@click.pass_context
@reports_errors
def task_complete(ctx, task_id, data, actor, role):
    """Complete a task with its form data."""
    engine = _engine(ctx)
    payload = _json_object(data)
    case_id = engine.queries.task(task_id).case_id
    engine.cases.complete_task(task_id, payload, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(case_id)))


@task.command("sign")
@click.argument("task_id", type=int)
@click.option("--actor", default="cli")
@click.option("--role", default=None)
@click.pass_context
@reports_errors
def task_sign(ctx, task_id, actor, role):
    """Sign for a dispatched task (签收)."""
    engine = _engine(ctx)
    engine.cases.sign_for(task_id, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("return")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="Why the unit is not responsible (required).")
@click.option("--actor", default="cli")
@click.option("--role", default=None)
@click.pass_context
@reports_errors
def task_return(ctx, task_id, reason, actor, role):
    """Return a dispatched task to the agency (退单), with a reason."""
    engine = _engine(ctx)
    engine.cases.return_task(task_id, reason, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("refuse")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="Why the work is off the county's matter list (required).")
@click.option("--actor", default="cli")
@click.option("--role", default=None)
@click.pass_context
@reports_errors
def task_refuse(ctx, task_id, reason, actor, role):
    """A grid worker refuses work off the county's matter list (条例第十三条), with a reason."""
    engine = _engine(ctx)
    engine.cases.refuse_task(task_id, reason, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("extend")
@click.argument("task_id", type=int)
@click.option("--days", type=int, required=True, help="Working days asked for (1-10).")
@click.option("--reason", required=True)
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def task_extend(ctx, task_id, days, reason, actor):
    """Ask for an extension (延期申请) before the deadline."""
    engine = _engine(ctx)
    engine.cases.request_extension(task_id, days, reason, actor=actor, role="responsible_unit")
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("decide-extension")
@click.argument("task_id", type=int)
@click.option("--approve/--refuse", required=True)
@click.option("--comment", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def task_decide_extension(ctx, task_id, approve, comment, actor):
    """The dispatching agency approves or refuses an extension request."""
    engine = _engine(ctx)
    engine.cases.decide_extension(task_id, approve, actor=actor, role="grid_agency", comment=comment)
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("remind")
@click.argument("task_id", type=int)
@click.option("--note", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def task_remind(ctx, task_id, note, actor):
    """Remind the unit before its deadline (催办)."""
    _engine(ctx).cases.remind(task_id, note, actor=actor, role="grid_agency")
    click.echo(f"reminded task {task_id}")


@case.command("supervise")
@click.argument("case_id", type=int)
@click.option("--card", type=click.Choice(["normal", "yellow", "red"]), required=True)
@click.option("--level", "acting_level", type=click.Choice(["township", "county", "city"]), required=True,
              help="Level of the supervising agency (higher than the case's).")
@click.option("--note", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_supervise(ctx, case_id, card, acting_level, note, actor):
    """Supervise a case from a higher level (督办)."""
    _engine(ctx).cases.supervise(case_id, card, acting_level, note, actor=actor, role="grid_agency")
    click.echo(f"case {case_id}: {card} supervision by the {acting_level} level recorded")


@main.command()
@click.option("--unit", default=None)
@click.option("--warning", type=click.Choice(["green", "yellow", "red"]), default=None)
@click.option("--yellow-share", type=click.FloatRange(0.01, 0.99), default=0.7, show_default=True)
@click.pass_context
@reports_errors
def deadlines(ctx, unit, warning, yellow_share):
    """Where dispatched tasks stand against their deadlines (预警: yellow, red; late sign-for)."""
    from engine.clock import SYSTEM_CLOCK
    rows = _engine(ctx).deadlines.standing(SYSTEM_CLOCK.now(), yellow_share=yellow_share, unit=unit,
                                           warning=warning)
    if not rows:
        click.echo("no dispatched tasks")
        return
    click.echo(render.table(["case", "task", "unit", "warning", "due (CST)", "used", "ext. days", "sign-for"],
                            [[r.case_id, r.task_id, r.unit, r.warning, render.when(r.due_at),
                              f"{r.share_used:.0%}" if r.share_used is not None else "",
                              r.extension_days or "", "LATE" if r.sign_for_overdue else ""] for r in rows]))


@main.command()
@click.option("--case", "case_id", type=int, default=None)
@click.pass_context
@reports_errors
def timers(ctx, case_id):
    """Pending timers, earliest first."""
    rows = _engine(ctx).timers.pending(case_id)
    click.echo(render.table(["case", "element", "name", "due (CST)"],
                            [[t.case_id, t.element_id, t.name, render.when(t.due_at)] for t in rows])
               if rows else "no pending timers")


@main.group()
def calendar():
    """The working-day calendar: versions, next year's schedule, local closures."""


@calendar.command("show")
@click.pass_context
@reports_errors
def calendar_show(ctx):
    """Calendar versions, newest last, with the years they cover."""
    rows = _engine(ctx).calendars.versions()
    click.echo(render.table(["version", "years", "closures", "note", "by", "at (CST)"],
                            [[v.id, f"{min(v.data['years'])}-{max(v.data['years'])}", len(v.data["closures"]),
                              v.note, v.created_by, render.when(v.created_at)] for v in rows]))


@calendar.command("add-year")
@click.argument("year", type=int)
@click.option("--holidays", required=True, help="Comma-separated weekday holidays, YYYY-MM-DD.")
@click.option("--makeup", default="", help="Comma-separated makeup working weekend days (调休), YYYY-MM-DD.")
@click.option("--by", "who", default="admin")
@click.pass_context
@reports_errors
def calendar_add_year(ctx, year, holidays, makeup, who):
    """Add a year's schedule as the State Council published it."""
    try:
        version, _ = _engine(ctx).calendars.add_year(year, _dates(holidays), _dates(makeup), by=who)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"calendar version {version} covers {year}")


@calendar.command("close")
@click.argument("dates")
@click.option("--note", default="")
@click.option("--by", "who", default="admin")
@click.pass_context
@reports_errors
def calendar_close(ctx, dates, note, who):
    """Declare local closure days (comma-separated YYYY-MM-DD) as rest days."""
    try:
        version, _ = _engine(ctx).calendars.add_closures(_dates(dates), by=who, note=note)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"calendar version {version}: closed {dates}")


def _dates(text: str) -> list[str]:
    return [d.strip() for d in text.split(",") if d.strip()]


@main.command()
@click.argument("case_id", type=int)
@click.argument("name")
@click.option("--data", default="{}", help="Message payload as JSON.")
@click.option("--actor", default="platform")
@click.option("--role", default="platform")
@click.pass_context
@reports_errors
def message(ctx, case_id, name, data, actor, role):
    """Send message NAME into a case (a unit system's feedback, a resident's follow-up)."""
    engine = _engine(ctx)
    engine.cases.send_message(case_id, name, _json_object(data), actor=actor, role=role)
    click.echo(render.case(engine.queries.case(case_id)))


@main.command()
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=10, show_default=True,
              help="Seconds between sweeps (a wake-up is also set for the next due timer).")
@click.option("--batch", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Cases fired per transaction.")
@click.option("--once", is_flag=True, help="Sweep once (fire everything due now) and exit.")
@click.pass_context
@reports_errors
def worker(ctx, interval, batch, once):
    """Run the timer service: fire due deadlines exactly once, catching up after downtime."""
    from engine.clock import SYSTEM_CLOCK
    from engine.worker import TimerWorker, worker_name
    engine = _engine(ctx)
    if once:
        result = engine.timers.sweep(SYSTEM_CLOCK, worker=worker_name(), batch=batch,
                                     progress=lambda r: click.echo(f"  fired {r.fired_cases} cases...", err=True))
        click.echo(f"fired timers of {result.fired_cases} cases, {result.failed_cases} failed")
        for error in result.errors:
            click.echo(f"  error: {error}")
        # The rest of what the running service does on each round: yellow warnings, then webhooks.
        warned = engine.outbox.emit_warnings(SYSTEM_CLOCK)
        sent = engine.webhooks.pump(SYSTEM_CLOCK)
        click.echo(f"warnings emitted: {warned}; webhooks delivered {sent.delivered}, failed {sent.failed}, "
                   f"dead {sent.dead}")
        return
    TimerWorker(engine, interval=interval, batch=batch, report=click.echo).run()


@main.command()
@click.option("--processes", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of definitions to deploy (default: the project's processes/).")
@click.pass_context
@reports_errors
def demo(ctx, processes):
    """Deploy the definitions and run realistic grid matters through their lifecycle."""
    from .demo import run_demo
    folder = processes or PROJECT_PROCESSES
    if not folder.is_dir():
        raise click.UsageError(f"no processes folder at {folder}; pass --processes")
    run_demo(_engine(ctx), folder, click.echo)


@main.group()
def registry():
    """The grid registry (条例 §7–§11): divisions, grids, workers; checks and public notices."""


@registry.command("import")
@click.argument("kind", type=click.Choice(["divisions", "grids", "workers"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "who", default="admin", show_default=True, help="Who imports (recorded).")
@click.pass_context
@reports_errors
def registry_import(ctx, kind, file, who):
    """Import KIND from FILE (.csv or .xlsx); all or nothing, every bad row reported."""
    store = _engine(ctx).registry
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise click.UsageError(f"{file.name}: give a .csv or .xlsx file")
    load = store.import_xlsx if suffix == ".xlsx" else store.import_csv
    click.echo(str(load(kind, file.read_bytes(), who, file=file.name)))


@registry.command("export")
@click.argument("kind", type=click.Choice(["divisions", "grids", "workers"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: CSV to standard output).")
@click.pass_context
@reports_errors
def registry_export(ctx, kind, fmt, out):
    """Export the current KIND rows, in the columns `registry import` reads."""
    store = _engine(ctx).registry
    data = store.export_xlsx(kind) if fmt == "xlsx" else store.export_csv(kind)
    if out is not None:
        out.write_bytes(data)
        click.echo(f"wrote {out}")
    elif fmt == "xlsx":
        raise click.UsageError("an xlsx export needs --out FILE")
    else:
        click.echo(data.decode("utf-8-sig"), nl=False)


@registry.command("sample")
@click.option("--by", "who", default="admin", show_default=True)
@click.pass_context
@reports_errors
def registry_sample(ctx, who):
    """Load the fictional county 410702 红旗区 (idempotent) and the units."""
    for result in _engine(ctx).registry.load_sample(who):
        click.echo(str(result))


@registry.command("check")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day to check (default today).")
@click.pass_context
@reports_errors
def registry_check(ctx, on_date):
    """Grids without a full-time worker (条例 §10) and urban grids outside 300–500 households (§8)."""
    store = _engine(ctx).registry
    missing = store.grids_without_full_time_worker(on_date.date() if on_date else None)
    click.echo(f"grids without a full-time worker (条例 §10): {len(missing)}")
    if missing:
        click.echo(render.table(["grid", "name", "part-time workers"],
                                [[g["code"], g["name"], g["part_time_workers"]] for g in missing]))
    warnings = store.household_warnings()
    click.echo(f"\nurban grids outside 300–500 households (条例 §8): {len(warnings)}")
    if warnings:
        click.echo(render.table(["grid", "name", "households"],
                                [[w["code"], w["name"], w["households"]] for w in warnings]))


@registry.command("notice")
@click.argument("grid")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a printable page to this file.")
@click.pass_context
@reports_errors
def registry_notice(ctx, grid, html_out):
    """The public notice of GRID (条例 §11)."""
    store = _engine(ctx).registry
    notice = store.public_notice(grid)
    click.echo(f"{notice['grid_name']} ({notice['grid_code']}, {notice['grid_type']})")
    click.echo(f"范围: {notice['area']}")
    for worker in notice["workers"] or [{"name": "（待配备）", "role": "", "phone": ""}]:
        click.echo(f"  {worker['role']} {worker['name']} {worker['phone']}".rstrip())
    click.echo(f"职责: {notice['duties']}")
    click.echo(f"监督电话: {notice['supervision_phone']}")
    if html_out is not None:
        html_out.write_text(store.public_notice_html(grid), encoding="utf-8")
        click.echo(f"wrote {html_out}")


def _change_date(value):
    """--date as given, else today in Beijing (registry dates are the administrators' calendar dates)."""
    from datetime import datetime
    return value.date() if value is not None else datetime.now(render.BEIJING).date()


_CHANGE_DATE = click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
                            help="The day the change takes effect (default today).")
_CHANGE_REASON = click.option("--reason", required=True, help="Why; filed with the city (条例 §7).")
_CHANGE_BY = click.option("--by", "who", default="admin", show_default=True, help="Who makes the change (recorded).")


def _filing_summary(filing) -> str:
    p = filing.payload
    if filing.kind == "grid_recoded":
        return f"{p['old_code']} → {p['new_code']}"
    if filing.kind == "grid_redrawn":
        return f"{filing.grid_code}: {p['before']['households']} → {p['after']['households']} households, area redrawn"
    if filing.kind == "grid_merged":
        return f"{' + '.join(s['code'] for s in p['sources'])} → {p['result']['code']}"
    if filing.kind == "grid_split":
        return f"{p['source']['code']} → {' + '.join(part['code'] for part in p['parts'])}"
    return f"{filing.grid_code or ''} {p.get('name', '')}".strip()


def _filings_table(filings) -> str:
    return render.table(["filing", "filed (CST)", "kind", "effective", "change", "by", "reason"],
                        [[f.id, render.when(f.created_at), f.kind, f.payload.get("effective_from", ""),
                          _filing_summary(f), f.created_by, f.payload.get("reason", "")] for f in filings])


def _show_change(change, on_date) -> None:
    retired = ", ".join(g.code for g in change.retired)
    opened = ", ".join(f"{g.code} {g.name} ({g.households} households)" for g in change.opened)
    click.echo(f"{retired} → {opened}, from {on_date}; filing {change.filing_id} filed with the city")
    for worker in change.workers_moved:
        click.echo(f"  moved {worker['name']} ({worker['employment']}) {worker['from']} → {worker['to']}")
    for worker in change.workers_unassigned:
        click.echo(f"  unassigned {worker['name']} ({worker['employment']}): no longer serves a grid; assign them "
                   f"with `gridflow registry import workers`")
    for warning in change.warnings:
        click.echo(f"  warning: {warning}")


@registry.command("recode")
@click.argument("old")
@click.argument("new")
@_CHANGE_DATE
@_CHANGE_REASON
@_CHANGE_BY
@click.pass_context
@reports_errors
def registry_recode(ctx, old, new, on_date, reason, who):
    """Give grid OLD the code NEW; its workers follow, the old code is retired, never reused."""
    store = _engine(ctx).registry
    day = _change_date(on_date)
    store.recode_grid(old, new, who, day, reason=reason)
    filing = store.filings(new)[-1]
    click.echo(f"{old} → {new} from {day}; workers moved: {'、'.join(filing.payload['workers_moved']) or 'none'}; "
               f"filing {filing.id} filed with the city")


@registry.command("redraw")
@click.argument("code")
@click.option("--households", type=click.IntRange(0), required=True)
@click.option("--boundary", required=True, help="The new area, e.g. 东至建设路，南至人民路…")
@click.option("--name", default=None, help="A new name (default: keep it).")
@_CHANGE_DATE
@_CHANGE_REASON
@_CHANGE_BY
@click.pass_context
@reports_errors
def registry_redraw(ctx, code, households, boundary, name, on_date, reason, who):
    """Redraw grid CODE's area under the same code."""
    store = _engine(ctx).registry
    day = _change_date(on_date)
    grid = store.redraw_grid(code, households, boundary, who, day, name=name, reason=reason)
    filing = store.filings(code)[-1]
    click.echo(f"{code} {grid.name} redrawn from {day}: {grid.households} households; filing {filing.id} filed "
               f"with the city")
    if filing.payload.get("household_warning"):
        click.echo(f"  warning: {filing.payload['household_warning']}")


@registry.command("merge")
@click.argument("codes", nargs=-1, required=True)
@click.option("--into", "into_code", required=True, help="The merged grid's code: one of CODES or a new one.")
@click.option("--name", default=None, help="The merged grid's name (default: the kept code's).")
@click.option("--households", type=click.IntRange(0), default=None, help="Default: the grids' sum.")
@click.option("--boundary", required=True, help="The merged grid's area.")
@_CHANGE_DATE
@_CHANGE_REASON
@_CHANGE_BY
@click.pass_context
@reports_errors
def registry_merge(ctx, codes, into_code, name, households, boundary, on_date, reason, who):
    """Merge grids CODES of one community into one; their workers move to it."""
    day = _change_date(on_date)
    change = _engine(ctx).registry.merge_grids(list(codes), into_code, name, households, boundary, who, day, reason)
    _show_change(change, day)


def _split_part(text: str) -> dict:
    fields = text.split(":", 3)
    if len(fields) != 4 or not fields[2].strip().isdigit():
        raise click.UsageError(f"--part {text!r}: write code:name:households:boundary, households a whole number")
    code, name, households, boundary = fields
    return {"code": code.strip(), "name": name, "households": int(households), "boundary": boundary}


def _assignment(text: str) -> tuple[str, str]:
    worker, sep, part = text.partition("=")
    if not sep or not worker.strip() or not part.strip():
        raise click.UsageError(f"--assign {text!r}: write WORKER=PART_CODE (worker by name, or by phone)")
    return worker.strip(), part.strip()


@registry.command("split")
@click.argument("code")
@click.option("--part", "parts", multiple=True, required=True,
              help="code:name:households:boundary, once per part (2 or more); one part may keep CODE.")
@click.option("--assign", "assignments", multiple=True,
              help="WORKER=PART_CODE: where a worker serves after the split (by name or phone).")
@_CHANGE_DATE
@_CHANGE_REASON
@_CHANGE_BY
@click.pass_context
@reports_errors
def registry_split(ctx, code, parts, assignments, on_date, reason, who):
    """Split grid CODE into parts; unassigned workers stay with a part keeping CODE, else are reported."""
    day = _change_date(on_date)
    workers = dict(_assignment(a) for a in assignments)
    change = _engine(ctx).registry.split_grid(code, [_split_part(p) for p in parts], who, day, reason,
                                              workers=workers)
    _show_change(change, day)


@registry.command("history")
@click.argument("code")
@click.pass_context
@reports_errors
def registry_history(ctx, code):
    """What grid CODE came from and became: every row before and after it, and the filings of each change."""
    lineage = _engine(ctx).registry.lineage(code)
    click.echo(render.table(["grid", "name", "type", "households", "from", "to"],
                            [[g.code, g.name, g.grid_type, g.households, g.effective_from, g.effective_to or ""]
                             for g in lineage.rows]))
    click.echo("\nfilings:")
    click.echo(_filings_table(lineage.changes))


@registry.command("filings")
@click.option("--grid", "grid_code", default=None, help="Only filings naming this grid code.")
@click.pass_context
@reports_errors
def registry_filings(ctx, grid_code):
    """Filings with the city (备案, 条例 §7): every grid created, redrawn, recoded, merged or split."""
    rows = _engine(ctx).registry.filings(grid_code)
    click.echo(_filings_table(rows) if rows else "no filings")


# -- command groups kept in their own modules --
# (matter lists, issue 4)
from .cli_lists import catalog as _catalog, lists as _lists  # noqa: E402
main.add_command(_lists)
main.add_command(_catalog)
# (API: serve, token; issue 5)
from .cli_serve import register as _register_api  # noqa: E402
_register_api(main)
# (webhooks; issue 5)
from .cli_webhooks import webhooks as _webhooks  # noqa: E402
main.add_command(_webhooks)
# (audit; issue 6)
from .cli_audit import audit  # noqa: E402  (it imports the helpers above)

main.add_command(audit)


if __name__ == "__main__":
    main()
