"""`gridflow deadlines | timers | calendar … | worker`: time limits, pending timers, the working-day calendar and the timer service."""
from __future__ import annotations

import click

from api.cli import render
from api.cli.common import engine_of, parse_dates, reports_errors

@click.command()
@click.option("--unit", default=None)
@click.option("--warning", type=click.Choice(["green", "yellow", "red"]), default=None)
@click.option("--yellow-share", type=click.FloatRange(0.01, 0.99), default=0.7, show_default=True)
@click.pass_context
@reports_errors
def deadlines(ctx, unit, warning, yellow_share):
    """Where dispatched tasks stand against their deadlines (预警: yellow, red; late sign-for)."""
    from engine.clock import SYSTEM_CLOCK
    rows = engine_of(ctx).deadlines.standing(SYSTEM_CLOCK.now(), yellow_share=yellow_share, unit=unit,
                                           warning=warning)
    if not rows:
        click.echo("no dispatched tasks")
        return
    click.echo(render.table(["case", "task", "unit", "warning", "due (CST)", "used", "ext. days", "sign-for"],
                            [[r.case_id, r.task_id, r.unit, r.warning, render.when(r.due_at),
                              f"{r.share_used:.0%}" if r.share_used is not None else "",
                              r.extension_days or "", "LATE" if r.sign_for_overdue else ""] for r in rows]))


@click.command()
@click.option("--case", "case_id", type=int, default=None)
@click.pass_context
@reports_errors
def timers(ctx, case_id):
    """Pending timers, earliest first."""
    rows = engine_of(ctx).timers.pending(case_id)
    click.echo(render.table(["case", "element", "name", "due (CST)"],
                            [[t.case_id, t.element_id, t.name, render.when(t.due_at)] for t in rows])
               if rows else "no pending timers")


@click.group()
def calendar():
    """The working-day calendar: versions, next year's schedule, local closures."""


@calendar.command("show")
@click.pass_context
@reports_errors
def calendar_show(ctx):
    """Calendar versions, newest last, with the years they cover."""
    rows = engine_of(ctx).calendars.versions()
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
        version, _ = engine_of(ctx).calendars.add_year(year, parse_dates(holidays), parse_dates(makeup), by=who)
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
        version, _ = engine_of(ctx).calendars.add_closures(parse_dates(dates), by=who, note=note)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"calendar version {version}: closed {dates}")





@click.command()
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
    engine = engine_of(ctx)
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
