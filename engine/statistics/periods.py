"""Periods in Beijing time: a day, ISO week, month, quarter or year is local calendar time, because that is
the time the county's figures are reported in."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from rules.calendar import BEIJING

PERIODS = ("day", "week", "month", "quarter", "year")
MAX_PERIODS = 400


class PeriodError(ValueError):
    pass


def period_start(kind: str, day: date) -> date:
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    if kind == "year":
        return date(day.year, 1, 1)
    raise PeriodError(f"unknown period {kind!r}; one of {', '.join(PERIODS)}")


def next_start(kind: str, start: date) -> date:
    if kind == "day":
        return start + timedelta(days=1)
    if kind == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    m = start.month - 1 + months
    return date(start.year + m // 12, m % 12 + 1, 1)


def key_of(kind: str, start: date) -> str:
    if kind == "day":
        return start.isoformat()
    if kind == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if kind == "month":
        return f"{start.year}-{start.month:02d}"
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def split(kind: str, first: date, last: date) -> list[tuple[str, date, date]]:
    """The periods of `kind` covering the days first..last-1 (last exclusive): [(key, start, end)]."""
    if kind not in PERIODS:
        raise PeriodError(f"unknown period {kind!r}; one of {', '.join(PERIODS)}")
    if last <= first:
        raise PeriodError(f"the range ends ({last}) before it starts ({first})")
    found = []
    start = period_start(kind, first)
    while start < last:
        end = next_start(kind, start)
        found.append((key_of(kind, start), start, end))
        if len(found) > MAX_PERIODS:
            raise PeriodError(f"more than {MAX_PERIODS} periods; choose a longer period or a shorter range")
        start = end
    return found


def shifted_back(kind: str, first: date, count: int) -> date:
    """The start of the span of `count` periods just before the period starting `first`."""
    start = period_start(kind, first)
    for _ in range(count):
        start = period_start(kind, start - timedelta(days=1))
    return start


def utc_start(day: date) -> datetime:
    """The moment a Beijing-time day begins, in UTC."""
    return datetime.combine(day, time(0), BEIJING).astimezone(timezone.utc)


def local_day(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()
