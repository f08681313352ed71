"""The files officials keep their tables in: CSV that Excel opens as UTF-8, and Excel workbooks (.xlsx).

One reader and one writer for every upload and download (registry, matter lists, the catalog), so every
sheet is read and written the same way: codes stay text, dates are ISO, a broken workbook is one problem.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Iterable

from rules.tables import TableProblem


def read_xlsx_records(file: str, data: bytes, problems: list[TableProblem]) -> list[list[str]] | None:
    """The first sheet's rows as text cells; None, with the reason in `problems`, when it is no workbook."""
    from openpyxl import load_workbook   # openpyxl parses the XML with defusedxml when it is installed

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # a zip that is not a workbook fails in many ways, all meaning the same thing
        problems.append(TableProblem(file, None, None, f"not an Excel workbook (.xlsx): {type(exc).__name__}"))
        return None
    try:
        sheet = book.worksheets[0]
        return [[cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))   # Excel stores 420 as 420.0
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_bytes(columns: Iterable[str], rows: list[list]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    # With the byte-order mark Excel opens the file as UTF-8 instead of GBK.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(title: str, columns: tuple[str, ...], rows: list[list], *, wide: tuple[str, ...] = ()) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]   # Excel's limit on sheet names
    sheet.append(list(columns))
    for row in rows:
        sheet.append(row)
    # Codes and phones are text: left as General, Excel would turn 410702001001 into 4.10702E+11.
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, str):
                cell.number_format = "@"
    for index, name in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = 40 if name in wide else 18
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
