"""`gridflow lists`: county grid matter lists (网格事项清单, 条例 §13) — show, export, and apply for a change,
which then runs through the approval process like any case (`gridflow tasks`, `gridflow task complete`)."""
from __future__ import annotations

from pathlib import Path

import click

from rules.catalog import shipped_catalog

from api.cli import render
from api.cli.common import change_date, engine_of, reports_errors
from api.cli.demo import file_sample_list


@click.group("lists")
def lists():
    """County grid matter lists (网格事项清单): versions, the list in force, changes by approval."""


@lists.command("versions")
@click.argument("county", required=False)
@click.pass_context
@reports_errors
def lists_versions(ctx, county):
    """Every adopted version (of COUNTY, or all), with the approval case that filed it."""
    records = engine_of(ctx).matter_lists.records(county)
    if not records:
        click.echo("no matter list has been filed" + (f" for county {county}" if county else ""))
        return
    click.echo(render.table(["county", "version", "in force from", "matters", "temporary", "case", "adopted"],
                            [[r["county_code"], r["version"], r["effective_from"], r["sub_categories"],
                              r["temporary"], r["case_id"] or "", render.when(r["adopted_at"])] for r in records]))


@lists.command("show")
@click.argument("county")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day to look at (default: today in Beijing).")
@click.pass_context
@reports_errors
def lists_show(ctx, county, on):
    """The list of COUNTY in force on a day."""
    day = change_date(on)
    matter_list = engine_of(ctx).matter_lists.in_force(county, day)
    catalog = shipped_catalog()
    click.echo(f"county {county}, version {matter_list.version}, in force from {matter_list.effective_from}")
    rows = [[code, _name(catalog, code), "permanent", ""] for code in matter_list.sub_categories]
    rows += [[t.sub_category, _name(catalog, t.sub_category),
              "temporary" if t.counts_on(day) else "temporary (expired)", f"until {t.expires_on}: {t.reason}"]
             for t in matter_list.temporary]
    click.echo(render.table(["code", "name", "admission", "note"], rows))


@lists.command("export")
@click.argument("county")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@click.pass_context
@reports_errors
def lists_export(ctx, county, on, out):
    """The list in force as CSV (opens in Excel); edit it and `lists apply --file` it back."""
    data = engine_of(ctx).matter_lists.export_csv(county, change_date(on))
    if out is None:
        click.echo(data.decode("utf-8-sig"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out}")


@lists.command("apply")
@click.argument("county")
@click.option("--version", "version", required=True, help="The new version's name, e.g. 2027.1.")
@click.option("--from", "effective_from", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="The day the new version takes effect.")
@click.option("--reason", required=True, help="Why the change is needed.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The whole new list as CSV or .xlsx (columns of `lists export`); or use --add/--remove.")
@click.option("--add", "add", multiple=True, help="A sub-category code to add (repeatable).")
@click.option("--remove", "remove", multiple=True, help="A sub-category code to remove (repeatable).")
@click.option("--temporary", "temporary", multiple=True, metavar="CODE:YYYY-MM-DD:REASON",
              help="A temporary admission (临时准入) ending on the date (repeatable).")
@click.option("--applicant", default="cli", help="The applying department.")
@click.pass_context
@reports_errors
def lists_apply(ctx, county, version, effective_from, reason, file, add, remove, temporary, applicant):
    """Apply for a change to COUNTY's list: starts its approval case (review → agreement → filing)."""
    engine = engine_of(ctx)
    if file is not None:
        if add or remove or temporary:
            raise click.UsageError("give either --file or --add/--remove/--temporary, not both")
        change = engine.matter_lists.change_from_file(county, file.name, file.read_bytes())
    else:
        change = {"add": list(add), "remove": list(remove), "temporary": [_admission(t) for t in temporary]}
    data = {"county_code": county, "version": version, "effective_from": effective_from.date().isoformat(),
            "reason": reason, "applicant": applicant, **change}
    case_id = engine.cases.start("matter_list_change", data, actor=applicant, role="responsible_unit")
    click.echo(f"applied: case {case_id}; the county grid authority reviews it next")
    click.echo(render.case(engine.queries.case(case_id)))


@lists.command("sample")
@click.option("--who", default="sample", help="Recorded as the actor of each step.")
@click.pass_context
@reports_errors
def lists_sample(ctx, who):
    """File the sample county's (红旗区 410702) list through the whole approval process."""
    engine = engine_of(ctx)
    case_id = file_sample_list(engine, who)
    click.echo(f"filed the sample matter list of 410702 through case {case_id}")


def _admission(text: str) -> dict:
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise click.UsageError(f"--temporary {text!r}: write CODE:YYYY-MM-DD:REASON")
    return {"sub_category": parts[0].strip(), "expires_on": parts[1].strip(), "reason": parts[2].strip()}


def _name(catalog, code: str) -> str:
    sub = catalog.sub_categories.get(code)
    return sub.name if sub else "?"


@click.group("catalog")
def catalog():
    """The city admission catalog (准入分类目录, 条例 §12–§13): export it, check an edited copy."""


@catalog.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output, CSV only).")
@reports_errors
def catalog_export(fmt, out):
    """Every sub-category with its category and default time limits (normal urgency)."""
    from engine.execution.functions import time_limits
    from engine.registry.spreadsheets import csv_bytes, xlsx_bytes
    from rules.catalog import EXPORT_COLUMNS, export_rows

    rows = export_rows(shipped_catalog(), time_limits())
    if fmt == "xlsx":
        if out is None:
            raise click.UsageError("--format xlsx needs --out FILE")
        out.write_bytes(xlsx_bytes("catalog", EXPORT_COLUMNS, rows, wide=("name",)))
    elif out is None:
        click.echo(csv_bytes(EXPORT_COLUMNS, rows).decode("utf-8-sig"), nl=False)
        return
    else:
        out.write_bytes(csv_bytes(EXPORT_COLUMNS, rows))
    click.echo(f"wrote {out} ({len(rows)} sub-categories, catalog {shipped_catalog().version})")


@catalog.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def catalog_check(file):
    """Check an edited catalog (CSV or .xlsx) and list every problem by row; exit 1 if there are any."""
    from engine.registry.spreadsheets import read_xlsx_records
    from rules.catalog import check_records
    from rules.tables import decode_csv_records

    problems = []
    data = file.read_bytes()
    reader = read_xlsx_records if file.suffix.lower() == ".xlsx" else decode_csv_records
    records = reader(file.name, data, problems)
    if records is not None:
        problems += check_records(file.name, records)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"{file}: no problems")
