"""The files officials keep their tables in: CSV that Excel opens as UTF-8, and Excel workbooks (.xlsx).

One reader and one writer for every upload and download (registry, matter lists, the catalog), so every
sheet is read and written the same way: codes stay text, dates are ISO, a broken workbook is one problem.
"""
from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from typing import Iterable

from defusedcsv import csv as defused_csv

from rules.tables import MAX_CELLS, MAX_ROWS, TableProblem

# A workbook is a zip of XML: a small upload can expand a thousandfold. What its members may hold once
# unzipped, read from the zip's directory before anything is decompressed (zipfile never yields more
# than a member's stated size). A county's registry of a few thousand rows is a few percent of it. Parsing
# costs about 17 µs a cell here (200,000 cells of a 9 MB sheet: 3.4 s), so the cells read are capped too:
# a worker is never busy with one upload for more than seconds.
MAX_XLSX_UNCOMPRESSED = 16 * 1024 * 1024
MAX_XLSX_CELLS = 400_000
MAX_XLSX_MEMBERS = 1000


def read_xlsx_records(file: str, data: bytes, problems: list[TableProblem]) -> list[list[str]] | None:
    """The first sheet's rows as text cells, read as a stream; None, with the reason in `problems`, when it
    is no workbook or holds more than the limits (its unzipped size, MAX_ROWS rows, MAX_CELLS cells a row)."""
    from openpyxl import load_workbook   # openpyxl parses the XML with defusedxml when it is installed

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        problems.append(TableProblem(file, None, None, f"not an Excel workbook (.xlsx): {type(exc).__name__}"))
        return None
    unzipped = sum(member.file_size for member in members)
    if unzipped > MAX_XLSX_UNCOMPRESSED or len(members) > MAX_XLSX_MEMBERS:
        problems.append(TableProblem(file, None, None, f"the workbook unzips to {unzipped:,} bytes in {len(members)} "
                                     f"parts; the limit is {MAX_XLSX_UNCOMPRESSED:,} bytes: split the table or save "
                                     "it as CSV"))
        return None
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # a zip that is not a workbook fails in many ways, all meaning the same thing
        problems.append(TableProblem(file, None, None, f"not an Excel workbook (.xlsx): {type(exc).__name__}"))
        return None
    try:
        sheet = book.worksheets[0]
        records = []
        cells = 0
        for row in sheet.iter_rows(values_only=True, max_col=MAX_CELLS + 1):
            cells += len(row)
            if cells > MAX_XLSX_CELLS:
                problems.append(TableProblem(file, len(records) + 1, None, f"more than {MAX_XLSX_CELLS:,} cells; the "
                                             f"limit is {MAX_XLSX_CELLS:,}: split the table or save it as CSV"))
                return None
            if len(records) >= MAX_ROWS:
                problems.append(TableProblem(file, MAX_ROWS + 1, None, f"more than {MAX_ROWS:,} rows; the limit is "
                                             f"{MAX_ROWS:,}: split the table"))
                return None
            if len(row) > MAX_CELLS and any(value is not None for value in row[MAX_CELLS:]):
                problems.append(TableProblem(file, len(records) + 1, None, f"more than {MAX_CELLS} cells in a row"))
                return None
            records.append([cell_text(value) for value in row[:MAX_CELLS]])
        return records
    except Exception as exc:  # a workbook broken inside its sheet
        problems.append(TableProblem(file, None, None, f"the workbook's sheet cannot be read: {type(exc).__name__}"))
        return None
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


def _tab_or_return(value):
    """defusedcsv neutralises cells starting with = + - @ | %; OWASP's rule names a leading tab and carriage
    return too."""
    if isinstance(value, str) and value.startswith(("\t", "\r")):
        return "'" + value
    return value


def csv_bytes(columns: Iterable[str], rows: list[list]) -> bytes:
    """A CSV download; every cell that a spreadsheet could run as a formula is written as text: prefixed with
    an apostrophe by defusedcsv (which also escapes its `|` as `\\|`); `rules.tables` undoes it on import."""
    out = io.StringIO(newline="")
    writer = defused_csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(columns))
    writer.writerows([[_tab_or_return(value) for value in row] for row in rows])
    # With the byte-order mark Excel opens the file as UTF-8 instead of GBK.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(title: str, columns: tuple[str, ...], rows: list[list], *, wide: tuple[str, ...] = ()) -> bytes:
    """An Excel download: every text is a text cell, never a formula, whatever it starts with."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]   # Excel's limit on sheet names
    sheet.append(list(columns))
    for row in rows:
        sheet.append(row)
    # Codes and phones are text: left as General, Excel would turn 410702001001 into 4.10702E+11.
    for column in sheet.iter_cols():
        for cell in column:
            if isinstance(cell.value, str):
                cell.data_type = "s"   # openpyxl takes a text starting with "=" for a formula otherwise
                if cell.row > 1:
                    cell.number_format = "@"
    for index, name in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = 40 if name in wide else 18
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
