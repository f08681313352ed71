"""`gridflow registry …`: the grid registry (条例 §7–§11): imports, exports, checks, notices, grid changes."""
from __future__ import annotations

from pathlib import Path

import click

from api.cli import render
from api.cli.common import engine_of, change_date, reports_errors

_CHANGE_DATE = click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
                            help="The day the change takes effect (default today).")
_CHANGE_REASON = click.option("--reason", required=True, help="Why; filed with the city (条例 §7).")
_CHANGE_BY = click.option("--by", "who", default="admin", show_default=True, help="Who makes the change (recorded).")


@click.group()
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
    store = engine_of(ctx).registry
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
    store = engine_of(ctx).registry
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
    for result in engine_of(ctx).registry.load_sample(who):
        click.echo(str(result))


@registry.command("check")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day to check (default today).")
@click.pass_context
@reports_errors
def registry_check(ctx, on_date):
    """Grids without a full-time worker (条例 §10) and urban grids outside 300–500 households (§8)."""
    store = engine_of(ctx).registry
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
    store = engine_of(ctx).registry
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
    store = engine_of(ctx).registry
    day = change_date(on_date)
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
    store = engine_of(ctx).registry
    day = change_date(on_date)
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
    day = change_date(on_date)
    change = engine_of(ctx).registry.merge_grids(list(codes), into_code, name, households, boundary, who, day, reason)
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
    day = change_date(on_date)
    workers = dict(_assignment(a) for a in assignments)
    change = engine_of(ctx).registry.split_grid(code, [_split_part(p) for p in parts], who, day, reason,
                                              workers=workers)
    _show_change(change, day)


@registry.command("history")
@click.argument("code")
@click.pass_context
@reports_errors
def registry_history(ctx, code):
    """What grid CODE came from and became: every row before and after it, and the filings of each change."""
    lineage = engine_of(ctx).registry.lineage(code)
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
    rows = engine_of(ctx).registry.filings(grid_code)
    click.echo(_filings_table(rows) if rows else "no filings")
