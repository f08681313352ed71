"""`gridflow stats`: the figures of docs/statistics.md on the command line, as a table, CSV or .xlsx, and
the cases behind any one number."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from engine.access.scopes import Principal
from engine.statistics import export, periods
from engine.statistics.figures import FIGURES, HEADLINE
from engine.statistics.service import GROUPS

from api.cli import render
from api.cli.common import engine_of, reports_errors


def _principal(role, user, area, unit, grid, level) -> Principal:
    return Principal(user, role, grid_code=grid, unit=unit, area_code=area, level=level)


def _scope_options(func):
    for option in reversed([
        click.option("--role", default="auditor", show_default=True,
                     help="Whose scope to count in: auditor or platform (all), grid_agency (--area, --level), "
                          "responsible_unit (--unit), grid_worker (--grid)."),
        click.option("--user", default="cli", show_default=True),
        click.option("--area", "scope_area", default=None, help="The agency's division code."),
        click.option("--level", "scope_level", default=None, help="The agency's level."),
        click.option("--unit", "scope_unit", default=None, help="The unit's code."),
        click.option("--grid", "scope_grid", default=None, help="The worker's grid code."),
    ]):
        func = option(func)
    return func


def _as_of(value):
    return value.replace(tzinfo=render.BEIJING).astimezone(timezone.utc) if value is not None else None


@click.group()
def stats():
    """Statistics (条例 §15): on-time rates with an honest denominator, overdue, rework, satisfaction ..."""


@stats.command("figures")
@click.option("--period", type=click.Choice(periods.PERIODS), default="month", show_default=True)
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day (Beijing time).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Day after the last (exclusive).")
@click.option("--by", "group_by", type=click.Choice(GROUPS), default="township", show_default=True)
@click.option("--figure", "names", multiple=True, type=click.Choice([f.name for f in FIGURES]),
              help="Figures to show (repeat); default the headline figures for a table, all for files.")
@click.option("--filter-area", default=None, help="Only this division (6, 9 or 12 digits).")
@click.option("--filter-unit", default=None)
@click.option("--filter-worker", default=None)
@click.option("--filter-category", default=None)
@click.option("--filter-sub-category", default=None)
@click.option("--filter-process", default=None, help="process key and version, e.g. grid_matter:1")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]), default=None,
              help="Count only what had happened by then (Beijing time); default now.")
@click.option("--compare", is_flag=True, help="Add each figure's value in the span just before, and the change.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "xlsx"]), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (csv, xlsx); csv goes to stdout without it.")
@_scope_options
@click.pass_context
@reports_errors
def figures(ctx, period, first, last, group_by, names, filter_area, filter_unit, filter_worker, filter_category,
            filter_sub_category, filter_process, as_of, compare, fmt, out, role, user, scope_area, scope_level,
            scope_unit, scope_grid):
    """Figures per group and period, e.g. `gridflow stats figures --from 2026-01-01 --to 2027-01-01`."""
    if fmt == "xlsx" and out is None:
        raise click.UsageError("--format xlsx needs --out FILE")
    chosen = list(names) or (list(HEADLINE) if fmt == "table" else None)
    filters = {"area": filter_area, "unit": filter_unit, "worker": filter_worker, "category": filter_category,
               "sub_category": filter_sub_category, "process": filter_process}
    report = engine_of(ctx).statistics.report(
        _principal(role, user, scope_area, scope_unit, scope_grid, scope_level), period=period,
        start=first.date(), end=last.date(), group_by=group_by, as_of=_as_of(as_of), filters=filters,
        figures=chosen, compare=compare)
    if fmt == "csv":
        data = export.to_csv(report)
        if out is None:
            click.echo(data.decode("utf-8-sig"), nl=False)
        else:
            out.write_bytes(data)
            click.echo(f"wrote {len(report['rows'])} rows to {out}")
        return
    if fmt == "xlsx":
        out.write_bytes(export.to_xlsx(report))
        click.echo(f"wrote {len(report['rows'])} rows to {out}")
        return
    click.echo(f"as of {render.when(report['as_of'])} CST; figures {report['rules']['figures']}; rules used: "
               f"{', '.join(report['rules']['used']) or '-'}")
    headers = ["period", group_by, "name"] + chosen
    lines = []
    for row in report["rows"]:
        cells = [row["period"], row["group"], row["name"] or ""]
        for name in chosen:
            entry = row["figures"][name]
            cell = _shown(entry)
            if compare:
                cell += f" (was {_number(entry['previous'])})"
            cells.append(cell)
        lines.append(cells)
    click.echo(render.table(headers, lines))


def _number(value):
    if value is None:
        return "-"
    return f"{value:.1%}" if isinstance(value, float) and 0 <= value <= 1 else str(value)


def _shown(entry) -> str:
    if entry["denominator"] is None:
        return _number(entry["value"])
    return f"{_number(entry['value'])} ({entry['numerator']}/{entry['denominator']})"


@stats.command("cases")
@click.option("--figure", "name", type=click.Choice([f.name for f in FIGURES]), required=True)
@click.option("--part", type=click.Choice(["numerator", "denominator"]), default="numerator", show_default=True)
@click.option("--period-start", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--period-end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="exclusive")
@click.option("--in-area", "in_area", default=None)
@click.option("--in-unit", "in_unit", default=None)
@click.option("--in-worker", "in_worker", default=None)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]), default=None)
@click.option("--page", type=int, default=1)
@_scope_options
@click.pass_context
@reports_errors
def cases(ctx, name, part, period_start, period_end, in_area, in_unit, in_worker, as_of, page, role, user,
          scope_area, scope_level, scope_unit, scope_grid):
    """The cases behind one number (its drill-down)."""
    drill = {"figure": name, "part": part, "period_start": period_start.date(), "period_end": period_end.date(),
             "as_of": _as_of(as_of) or datetime.now(timezone.utc), "area": in_area, "unit": in_unit,
             "worker": in_worker}
    found = engine_of(ctx).statistics.cases(_principal(role, user, scope_area, scope_unit, scope_grid, scope_level),
                                            drill, page=page, per_page=200)
    click.echo(f"{found.total} cases")
    click.echo(render.table(["case", "status", "grid", "unit", "title", "created"],
                            [[c.id, c.status, c.grid_code, c.unit, c.title, render.when(c.created_at)]
                             for c in found.items]))


@stats.command("definitions")
def definitions():
    """Every figure and what it divides (docs/statistics.md says it in words)."""
    click.echo(render.table(["figure", "名称", "name", "kind", "numerator", "denominator"],
                            [[f.name, f.zh, f.en, f.kind, " + ".join(":".join(p) for p in f.numerator),
                              " + ".join(":".join(p) for p in f.denominator)] for f in FIGURES]))



