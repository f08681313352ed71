"""The 立结案标准 table: how long a responsible unit has for each matter sub-category and urgency (domain.md §4).

The table is data an administrator edits in a spreadsheet: `data/time_limits.csv`, one row per (sub-category,
urgency), with its version beside it in `data/time_limits.meta.json`. Loading checks every row and reports
every problem at once, with the row number the spreadsheet shows (`tables.py` says why the tables work so).

Units: `working_days` (a whole number; 0 means the same working day, 当日, for a worker's own matters),
`working_hours`, `natural_hours` (emergencies: the clock runs through nights and holidays). The sign-for limit
is in working hours and the return window in working days; neither may outlast the handling deadline.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Iterator

from .calendar import WorkCalendar
from .tables import (
    NotInTable, TableError, TableProblem, canonical_sha256, is_code, read_csv, read_csv_rows, read_meta, row_reporter,
)

# The nine kinds of grid matters of 条例 §12, spelled as the regulation spells them.
CATEGORIES = ("基础信息采集", "社情民意收集", "法律政策宣传", "民生事项服务", "心理疏导和危机干预",
              "矛盾纠纷排查化解", "安全隐患排查", "社会治安防控", "其他")
URGENCIES = ("normal", "urgent", "emergency")
UNITS = ("working_days", "working_hours", "natural_hours")
COLUMNS = ("sub_category", "name", "category", "urgency", "handling_limit", "handling_unit",
           "sign_for_limit_hours", "return_window_days", "closing_condition")

_PACKAGED = "time_limits.csv"


class TimeLimitTableError(TableError):
    what = "the time-limit table"


class UnknownSubCategory(NotInTable):
    """No limit for that sub-category (or not at that urgency); the message names what the table has."""


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
        return canonical_sha256({"version": self.version, "effective_from": self.effective_from.isoformat(),
                                 "limits": [asdict(self.limits[key]) for key in sorted(self.limits)]})


def load_time_limits(path: str | Path | None = None) -> TimeLimitTable:
    """Load and check the table at `path` (its meta file beside it), or the one shipped in `rules/data`."""
    csv_name, csv_bytes = read_csv(path, _PACKAGED)
    problems: list[TableProblem] = []
    version, effective_from = read_meta(path, _PACKAGED, problems)
    limits = _check_rows(csv_name, csv_bytes, problems)
    if problems:
        raise TimeLimitTableError(problems)
    return TimeLimitTable(version=version, effective_from=effective_from, limits=limits)


def _check_rows(name: str, raw: bytes, problems: list[TableProblem]) -> dict[tuple[str, str], TimeLimit]:
    rows = read_csv_rows(name, raw, COLUMNS, problems)
    if rows is None:
        return {}
    limits: dict[tuple[str, str], TimeLimit] = {}
    first_row: dict[tuple[str, str], int] = {}
    described: dict[str, tuple[int, str, str]] = {}
    for row_number, cells in rows:
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

    problem = row_reporter(problems, name, row)

    sub_category = cells["sub_category"]
    if not sub_category:
        problem("sub_category", "empty")
    elif not is_code(sub_category):
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
