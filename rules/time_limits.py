"""The 立结案标准 table: how long a responsible unit has for each matter sub-category and urgency (domain.md §4).

The table is data an administrator edits in a spreadsheet: `data/time_limits.csv`, one row per (sub-category,
urgency). Its version lives beside it in `data/time_limits.meta.json` ({"version", "effective_from"}) rather
than in a comment line (Excel would mangle it, and `csv` would read it as a row) or a column (repeated in every
row, and one stale cell makes two versions). Loading checks every row and reports every problem at once, with
the row number the spreadsheet shows (header = row 1), because the person fixing it works in the spreadsheet.

Units: `working_days` (a whole number; 0 means the same working day, 当日, for a worker's own matters),
`working_hours`, `natural_hours` (emergencies: the clock runs through nights and holidays). The sign-for limit
is in working hours and the return window in working days; neither may outlast the handling deadline.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Iterator, NamedTuple

from .calendar import WorkCalendar

# The nine kinds of grid matters of 条例 §12, spelled as the regulation spells them.
CATEGORIES = ("基础信息采集", "社情民意收集", "法律政策宣传", "民生事项服务", "心理疏导和危机干预",
              "矛盾纠纷排查化解", "安全隐患排查", "社会治安防控", "其他")
URGENCIES = ("normal", "urgent", "emergency")
UNITS = ("working_days", "working_hours", "natural_hours")
COLUMNS = ("sub_category", "name", "category", "urgency", "handling_limit", "handling_unit",
           "sign_for_limit_hours", "return_window_days", "closing_condition")

_PACKAGED = "time_limits.csv"


class TableProblem(NamedTuple):
    file: str
    row: int | None      # as the spreadsheet numbers it: the header is row 1
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.file, self.row and f"row {self.row}",
                                            self.column and f"column {self.column}") if part)
        return f"{where}: {self.reason}"


class TimeLimitTableError(ValueError):
    """The table cannot be used; `problems` lists every one found, each with its file, row and column."""

    def __init__(self, problems: list[TableProblem]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the time-limit table has {len(self.problems)} problem(s):\n{lines}")


class UnknownSubCategory(KeyError):
    """No limit for that sub-category (or not at that urgency); the message names what the table has."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class TimeLimit:
    sub_category: str
    name: str
    category: str
    urgency: str
    handling_limit: int | float
    handling_unit: str
    sign_for_limit_hours: int | float
    return_window_days: int
    closing_condition: str

    def deadline(self, start: datetime, calendar: WorkCalendar) -> datetime:
        """When the handling limit runs out for a matter dispatched at `start` (the clock starts at dispatch)."""
        if self.handling_unit == "working_days":
            return calendar.add_working_days(start, self.handling_limit)
        if self.handling_unit == "working_hours":
            return calendar.add_working_hours(start, self.handling_limit)
        return calendar.add_natural_hours(start, self.handling_limit)

    def sign_for_deadline(self, start: datetime, calendar: WorkCalendar) -> datetime:
        # Signing for a matter after it is due to be finished means nothing; an emergency dispatched at night
        # would otherwise get until the next morning to sign for a two-hour job.
        return min(calendar.add_working_hours(start, self.sign_for_limit_hours), self.deadline(start, calendar))

    def return_deadline(self, start: datetime, calendar: WorkCalendar) -> datetime:
        # Past the deadline a unit owes a written explanation (条例 §17); a return then would dodge it.
        return min(calendar.add_working_days(start, self.return_window_days), self.deadline(start, calendar))


@dataclass(frozen=True, eq=False)
class TimeLimitTable:
    version: str
    effective_from: date
    limits: dict[tuple[str, str], TimeLimit]

    def limit(self, sub_category: str, urgency: str = "normal") -> TimeLimit:
        if urgency not in URGENCIES:
            raise ValueError(f"unknown urgency {urgency!r}; known: {', '.join(URGENCIES)}")
        found = self.limits.get((sub_category, urgency))
        if found is not None:
            return found
        urgencies = [u for (sub, u) in self.limits if sub == sub_category]
        if urgencies:
            raise UnknownSubCategory(f"the time-limit table {self.version} has no {urgency!r} limit for "
                                     f"{sub_category!r}; it has: {', '.join(urgencies)}")
        raise UnknownSubCategory(f"unknown sub-category {sub_category!r} in the time-limit table {self.version}; "
                                 f"it has: {', '.join(self.sub_categories)}")

    @property
    def sub_categories(self) -> list[str]:
        return sorted({sub for sub, _ in self.limits})

    def __iter__(self) -> Iterator[TimeLimit]:
        return iter(self.limits.values())

    def __len__(self) -> int:
        return len(self.limits)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of what the table means (not its bytes): re-saving or re-ordering in Excel keeps it."""
        canonical = json.dumps(
            {"version": self.version, "effective_from": self.effective_from.isoformat(),
             "limits": [asdict(self.limits[key]) for key in sorted(self.limits)]},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_time_limits(path: str | Path | None = None) -> TimeLimitTable:
    """Load and check the table at `path` (its meta file beside it), or the one shipped in `rules/data`."""
    if path is None:
        data = resources.files(__package__).joinpath("data")
        csv_name, meta_name = _PACKAGED, _meta_name(_PACKAGED)
        csv_bytes, meta_bytes = data.joinpath(csv_name).read_bytes(), _read(data.joinpath(meta_name))
    else:
        path = Path(path)
        csv_name, meta_name = path.name, _meta_name(path.name)
        csv_bytes, meta_bytes = path.read_bytes(), _read(path.with_name(meta_name))
    problems: list[TableProblem] = []
    version, effective_from = _check_meta(meta_name, meta_bytes, problems)
    limits = _check_rows(csv_name, csv_bytes, problems)
    if problems:
        raise TimeLimitTableError(problems)
    return TimeLimitTable(version=version, effective_from=effective_from, limits=limits)


def _meta_name(csv_name: str) -> str:
    return csv_name.removesuffix(".csv") + ".meta.json"


def _read(source) -> bytes | None:
    try:
        return source.read_bytes()
    except FileNotFoundError:
        return None


def _check_meta(name: str, raw: bytes | None, problems: list[TableProblem]) -> tuple[str, date]:
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


def _check_rows(name: str, raw: bytes, problems: list[TableProblem]) -> dict[tuple[str, str], TimeLimit]:
    try:
        text = raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError:
        problems.append(TableProblem(name, None, None, "not UTF-8 text; in Excel save it as "
                                                       "\"CSV UTF-8 (逗号分隔)\", not plain CSV (GBK)"))
        return {}
    # Rows are counted as records, not lines: a cell with a line break is still one spreadsheet row.
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        problems.append(TableProblem(name, 1, None, f"empty file; the header row is: {','.join(COLUMNS)}"))
        return {}
    header = [cell.strip() for cell in records[0]]
    header_problems = [TableProblem(name, 1, column, "missing column") for column in COLUMNS
                       if column not in header]
    header_problems += [TableProblem(name, 1, column or f"#{i}", f"unknown column; the columns are: "
                                                                 f"{', '.join(COLUMNS)}")
                        for i, column in enumerate(header, start=1) if column not in COLUMNS]
    header_problems += [TableProblem(name, 1, column, "column appears twice") for column in COLUMNS
                        if header.count(column) > 1]
    if header_problems:  # without the header no cell can be read for sure
        problems.extend(header_problems)
        return {}

    limits: dict[tuple[str, str], TimeLimit] = {}
    first_row: dict[tuple[str, str], int] = {}
    described: dict[str, tuple[int, str, str]] = {}
    for row_number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue  # Excel leaves blank rows behind; they hold nothing
        if len(record) > len(header) and any(cell.strip() for cell in record[len(header):]):
            problems.append(TableProblem(name, row_number, None, f"{len(record)} cells but {len(header)} columns"))
        cells = {column: (record[i].strip() if i < len(record) else "") for i, column in enumerate(header)}
        row = _check_row(name, row_number, cells, problems)
        if row is None:
            continue
        key = (row.sub_category, row.urgency)
        if key in first_row:
            problems.append(TableProblem(name, row_number, "sub_category, urgency",
                                         f"{row.sub_category} / {row.urgency} is already in row {first_row[key]}; "
                                         f"each pair appears once"))
            continue
        earlier = described.setdefault(row.sub_category, (row_number, row.name, row.category))
        if earlier[1:] != (row.name, row.category):
            problems.append(TableProblem(name, row_number, "name, category",
                                         f"{row.sub_category} is {earlier[1]} / {earlier[2]} in row {earlier[0]}; "
                                         f"a sub-category has one name and category"))
            continue
        first_row[key] = row_number
        limits[key] = row
    if not limits and not problems:
        problems.append(TableProblem(name, None, None, "no rows: the table needs at least one time limit"))
    return limits


def _check_row(name: str, row: int, cells: dict[str, str], problems: list[TableProblem]) -> TimeLimit | None:
    before = len(problems)

    def problem(column: str, reason: str) -> None:
        problems.append(TableProblem(name, row, column, reason))

    sub_category = cells["sub_category"]
    if not sub_category:
        problem("sub_category", "empty")
    elif not (sub_category[0].isascii() and sub_category[0].isalpha() and sub_category.islower()
              and all(c.isascii() and (c.isalnum() or c == "_") for c in sub_category)):
        problem("sub_category", f"{sub_category!r} is not a code of lower-case letters, digits and _")
    for column in ("name", "closing_condition"):
        if not cells[column]:
            problem(column, "empty")
    if cells["category"] not in CATEGORIES:
        problem("category", f"unknown category {cells['category']!r}; the nine of 条例 §12 are: "
                            f"{', '.join(CATEGORIES)}")
    if cells["urgency"] not in URGENCIES:
        problem("urgency", f"unknown urgency {cells['urgency']!r}; known: {', '.join(URGENCIES)}")
    unit = cells["handling_unit"]
    if unit not in UNITS:
        problem("handling_unit", f"unknown unit {unit!r}; known: {', '.join(UNITS)}")
    if unit == "working_days":
        limit = _number(cells, "handling_limit", "working days (0 = the same working day)", problem,
                        whole=True, zero_allowed=True)
    else:
        limit = _number(cells, "handling_limit", "hours", problem)
    sign_for = _number(cells, "sign_for_limit_hours", "working hours", problem)
    return_window = _number(cells, "return_window_days", "working days", problem, whole=True)
    if len(problems) > before:
        return None
    return TimeLimit(sub_category=sub_category, name=cells["name"], category=cells["category"],
                     urgency=cells["urgency"], handling_limit=limit, handling_unit=unit,
                     sign_for_limit_hours=sign_for, return_window_days=return_window,
                     closing_condition=cells["closing_condition"])


def _number(cells: dict[str, str], column: str, meaning: str, problem, *, whole: bool = False,
            zero_allowed: bool = False) -> int | float | None:
    """A cell as a positive number (or ≥ 0), whole numbers as int so "2" and "2.0" mean, and hash, the same."""
    text = cells[column]
    try:
        value = float(text)
    except ValueError:
        problem(column, f"{text!r} is not a number of {meaning}" if text else "empty")
        return None
    if not math.isfinite(value):
        problem(column, f"{text!r} is not a number of {meaning}")
    elif whole and not value.is_integer():
        problem(column, f"{text} is not a whole number of {meaning}")
    elif value < 0 or (value == 0 and not zero_allowed):
        problem(column, f"{text} must be {'0 or more' if zero_allowed else 'positive'}")
    else:
        return int(value) if value.is_integer() else value
    return None
