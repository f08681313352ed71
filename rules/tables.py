"""What every rules table shares: a CSV an administrator edits in a spreadsheet, its version in a meta file.

A table is `data/<name>.csv` with `data/<name>.meta.json` ({"version", "effective_from"}) beside it, rather than
a comment line (Excel would mangle it, and `csv` would read it as a row) or a column (repeated in every row, and
one stale cell makes two versions). Checking a table collects every problem in a list instead of stopping at
the first, each with the row number the spreadsheet shows (header = row 1), because the person fixing it works
in the spreadsheet and should fix everything in one round.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Iterator, NamedTuple


# What one uploaded table may hold: a county's registry or matter list is a few thousand rows of a few columns.
MAX_ROWS = 50_000
MAX_CELLS = 200          # cells in one row


class TableProblem(NamedTuple):
    file: str
    row: int | None      # as the spreadsheet numbers it: the header is row 1
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.file, self.row and f"row {self.row}",
                                            self.column and f"column {self.column}") if part)
        return f"{where}: {self.reason}"


class TableError(ValueError):
    """The table cannot be used; `problems` lists every one found, each with its file, row and column."""

    what = "the table"   # each table's error names its table, as the person reading the message knows it

    def __init__(self, problems: list[TableProblem]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{self.what} has {len(self.problems)} problem(s):\n{lines}")


class NotInTable(KeyError):
    """A lookup the table cannot answer; the message names the table."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


def canonical_sha256(meaning: Any) -> str:
    """sha256 of a table's meaning as canonical JSON, so key order and spacing cannot change it."""
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_csv(path: str | Path | None, packaged: str) -> tuple[str, bytes]:
    """The file name and bytes of the table at `path`, or of the one shipped in `rules/data` as `packaged`."""
    if path is None:
        return packaged, _shipped(packaged).read_bytes()
    path = Path(path)
    return path.name, path.read_bytes()


def beside(path: str | Path | None, name: str) -> Path | Traversable:
    """The file `name` in the folder of the table at `path`, or in `rules/data` when the table is the shipped one."""
    return _shipped(name) if path is None else Path(path).with_name(name)


def read_if_present(source: Path | Traversable) -> bytes | None:
    try:
        return source.read_bytes()
    except FileNotFoundError:
        return None


def read_meta(path: str | Path | None, packaged: str, problems: list[TableProblem]) -> tuple[str, date]:
    """The version and effective_from of the table at `path` (or the shipped `packaged`), from the meta file
    beside it; what is wrong with the file goes to `problems`, and a part that cannot be read is "" or date.min."""
    name = (packaged if path is None else Path(path).name).removesuffix(".csv") + ".meta.json"
    raw = read_if_present(beside(path, name))
    if raw is None:
        problems.append(TableProblem(name, None, None, 'missing: it gives the table\'s version, as '
                                                       '{"version": "2026.1", "effective_from": "2026-01-01"}'))
        return "", date.min
    try:
        meta = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(TableProblem(name, None, None, f"not valid JSON: {exc}"))
        return "", date.min
    if not isinstance(meta, dict):
        problems.append(TableProblem(name, None, None, "must be a JSON object with version and effective_from"))
        return "", date.min
    version = meta.get("version")
    if not isinstance(version, str) or not version.strip():
        problems.append(TableProblem(name, None, "version", "must be a non-empty text such as \"2026.1\""))
        version = ""
    try:
        effective_from = date.fromisoformat(meta.get("effective_from"))
    except (TypeError, ValueError):
        problems.append(TableProblem(name, None, "effective_from", "must be a date YYYY-MM-DD"))
        effective_from = date.min
    return version.strip(), effective_from


def read_csv_rows(name: str, raw: bytes, columns: tuple[str, ...],
                  problems: list[TableProblem]) -> Iterator[tuple[int, dict[str, str]]] | None:
    """`table_rows` of the CSV file `raw`, every column required."""
    records = decode_csv_records(name, raw, problems)
    return None if records is None else table_rows(name, records, columns, problems)


def decode_csv_records(name: str, raw: bytes, problems: list[TableProblem]) -> list[list[str]] | None:
    """The records of a CSV file, one a spreadsheet row; None, with the reason in `problems`, when it is not
    UTF-8."""
    try:
        text = raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError:
        problems.append(TableProblem(name, None, None, "not UTF-8 text; in Excel save it as "
                                                       "\"CSV UTF-8 (逗号分隔)\", not plain CSV (GBK)"))
        return None
    # Rows are counted as records, not lines: a cell with a line break is still one spreadsheet row. Read as
    # a stream, each record checked against the limits as it comes.
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[list[str]] = []
    try:
        for record in reader:
            if len(records) >= MAX_ROWS:
                problems.append(TableProblem(name, MAX_ROWS + 1, None, f"more than {MAX_ROWS:,} rows; the limit is "
                                             f"{MAX_ROWS:,}: split the table"))
                return None
            if len(record) > MAX_CELLS:
                problems.append(TableProblem(name, len(records) + 1, None, f"{len(record)} cells in a row; the limit "
                                             f"is {MAX_CELLS}"))
                return None
            records.append(record)
    except csv.Error as exc:
        # The csv module's own limit on a field (131,072 characters) or a malformed record.
        reason = (f"a cell is longer than the {csv.field_size_limit():,} characters a cell may hold"
                  if "field larger than field limit" in str(exc) else f"not a readable CSV record ({exc})")
        problems.append(TableProblem(name, len(records) + 1, None, reason))
        return None
    return records


def table_rows(name: str, records: list[list[str]], columns: tuple[str, ...], problems: list[TableProblem], *,
               required: tuple[str, ...] | None = None) -> Iterator[tuple[int, dict[str, str]]] | None:
    """The non-blank rows of a sheet's records as (spreadsheet row number, {column: stripped cell}) once the
    header checks out; None, with the reasons in `problems`, when it does not. The header must have each of
    `required` (default: all of `columns`); a column it lacks reads as "" in every row.

    Rows are read as they are iterated and a row with cells beyond the header is reported then, so a caller
    that checks each row as it reads it reports every problem in row order."""
    if not records:
        problems.append(TableProblem(name, 1, None, f"empty file; the header row is: {','.join(columns)}"))
        return None
    header = [cell.strip() for cell in records[0]]
    required = columns if required is None else required
    header_problems = [TableProblem(name, 1, column, "missing column") for column in required
                       if column not in header]
    # A header cell left blank is reported only with something under it: spreadsheets save empty columns
    # beside the table as trailing commas or cells.
    header_problems += [TableProblem(name, 1, column or f"#{i}", f"unknown column; the columns are: "
                                                                 f"{', '.join(columns)}")
                        for i, column in enumerate(header, start=1) if column not in columns and (column or any(
                            i - 1 < len(record) and record[i - 1].strip() for record in records[1:]))]
    header_problems += [TableProblem(name, 1, column, "column appears twice") for column in columns
                        if header.count(column) > 1]
    if header_problems:  # without the header no cell can be read for sure
        problems.extend(header_problems)
        return None
    return _rows(name, columns, header, records[1:], problems)


def is_code(text: str) -> bool:
    """A code as every table writes it: lower-case ASCII letters, digits and _, starting with a letter."""
    return bool(text) and text[0].isascii() and text[0].isalpha() and text.islower() and all(
        c.isascii() and (c.isalnum() or c == "_") for c in text)


def _shipped(name: str) -> Traversable:
    return resources.files(__package__).joinpath("data", name)


def _rows(name: str, columns: tuple[str, ...], header: list[str], records: list[list[str]],
          problems: list[TableProblem]) -> Iterator[tuple[int, dict[str, str]]]:
    where = {column: header.index(column) for column in columns if column in header}
    for row, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue  # Excel leaves blank rows behind; they hold nothing
        if len(record) > len(header) and any(cell.strip() for cell in record[len(header):]):
            problems.append(TableProblem(name, row, None, f"{len(record)} cells but {len(header)} columns"))
        cells = record + [""] * (len(header) - len(record))  # a CSV row may stop before its last empty cells
        yield row, {column: exported_text(cells[where[column]]).strip() if column in where else ""
                    for column in columns}


# How CSV exports write a cell that a spreadsheet would run as a formula: an apostrophe before it (and its
# pipes escaped), the way defusedcsv does; reading such a file back gives the cell as it was.
_NEUTRALISED = ("'=", "'+", "'-", "'@", "'|", "'%", "'\t", "'\r")


def exported_text(cell: str) -> str:
    """A cell as it was before a CSV export made it inert."""
    if cell.startswith(_NEUTRALISED):
        text = cell[1:]
        return text if text[0] in "\t\r" else text.replace("\\|", "|")
    return cell


def row_reporter(problems: list[TableProblem], name: str, row: int):
    """`problem(column, reason)` for one row, so a row's checks read as a list of rules."""
    def problem(column: str, reason: str) -> None:
        problems.append(TableProblem(name, row, column, reason))
    return problem
