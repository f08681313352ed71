"""A report as a table: one row per group and period, each figure as value, numerator and denominator,
so a spreadsheet can be checked cell by cell. CSV (UTF-8 with BOM) and .xlsx through the shared writers."""
from __future__ import annotations

from engine.registry.spreadsheets import csv_bytes, xlsx_bytes
from engine.statistics.figures import BY_NAME

LEAD = ("period", "group", "name")


def columns(report: dict) -> list[str]:
    names = _figure_names(report)
    cols = list(LEAD)
    for name in names:
        cols += [name, f"{name}.numerator", f"{name}.denominator"]
        if any("previous" in r["figures"][name] for r in report["rows"][:1]):
            cols += [f"{name}.previous", f"{name}.change"]
    return cols


def rows(report: dict) -> list[list]:
    names = _figure_names(report)
    found = []
    for row in report["rows"]:
        line = [row["period"], _text(row["group"]), _text(row["name"] or "")]
        for name in names:
            entry = row["figures"][name]
            line += [entry["value"], entry["numerator"], entry["denominator"]]
            if "previous" in entry:
                line += [entry["previous"], entry["change"]]
        found.append(line)
    return found


def to_csv(report: dict) -> bytes:
    return csv_bytes(columns(report), rows(report))


def to_xlsx(report: dict) -> bytes:
    return xlsx_bytes("statistics", tuple(columns(report)), rows(report), wide=("name",))


def about(report: dict) -> list[tuple[str, str]]:
    """What a reader of the file needs to reproduce it: as of when, which rules, which figures mean what."""
    lines = [("as_of", report["as_of"].isoformat()), ("period", report["period"]),
             ("range", f"{report['start']} .. {report['end']} (end exclusive)"),
             ("group_by", report["group_by"]), ("figures version", report["rules"]["figures"]),
             ("rules used", ", ".join(report["rules"]["used"]) or "-")]
    for name in _figure_names(report):
        figure = BY_NAME[name]
        lines.append((name, f"{figure.zh} {figure.en}"))
    return lines


def _figure_names(report: dict) -> list[str]:
    if report["rows"]:
        return list(report["rows"][0]["figures"])
    return []


def _text(value):
    """Group names come from the registry: never let a spreadsheet read one as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "@") or (isinstance(value, str) and len(value) > 1
                                                                  and value[0] == "-"):
        return "'" + value
    return value
