"""The working-day calendar of China: which days count toward a time limit, and where a limit ends (domain.md §4).

A limit in working days or working hours needs the State Council's holiday schedule for every year it touches,
and that schedule is published only around November for the next year. So a calendar knows the years it was
given and refuses any other (`UnknownYear`) instead of guessing: a guess is wrong by days around the Spring
Festival and would make a unit overdue that was not (or spare one that was).

A calendar is plain data — covered years, weekday holidays, makeup working days (调休), local closures and the
working hours — immutable, and round-trips through `to_data`/`from_data` so the engine can store the version a
case used; `fingerprint` names that version.

Counting rule for "N working days after" (民法典 §201–203, domain.md §4): the day of the start is not counted,
whatever the hour; the deadline is the close of working hours on the N-th working day after it. Only working
days are counted, so the deadline never lands on a rest day: that is the roll-over of §203 built in.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from typing import Iterable

# China has kept one offset without daylight saving since 1991, so a fixed +08:00 is exact for every date a
# grid matter can have and needs no time-zone database.
BEIJING = timezone(timedelta(hours=8), "CST")

# Office hours of most Chinese government agencies; configurable because counties set their own (summer hours).
DEFAULT_WORKING_HOURS = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))

# Bumped when the shape of `to_data` changes, so a stored calendar is never read with the wrong meaning.
DATA_FORMAT = 1

# chinesecalendar's data begin here; it raises NotImplementedError outside its years.
_CHINESE_CALENDAR_FIRST_YEAR = 2004


class UnknownYear(ValueError):
    """A date the rule needs lies in a year whose holiday schedule the calendar was not given."""

    def __init__(self, year: int, detail: str = ""):
        self.year = year
        super().__init__(
            f"the working-day calendar has no schedule for {year}{f' ({detail})' if detail else ''}: the State "
            f"Council publishes each year's holidays and makeup working days (国务院办公厅关于{year}年部分节假日"
            f"安排的通知) around November of the year before, so {year} cannot be computed in advance; an "
            f"administrator adds it with WorkCalendar.with_year({year}, holidays=[...], makeup_workdays=[...]) "
            f"and stores the new calendar version")


@dataclass(frozen=True, repr=False)
class WorkCalendar:
    """Which days are working days in the covered years, and the working hours of a working day.

    The sets accept any iterable of `date` or ISO 'YYYY-MM-DD' strings, and `working_hours` pairs of `time` or
    'HH:MM'. Weekend dates among `holidays` are dropped (a weekend is a rest day already), so two calendars that
    mean the same have the same data and fingerprint.
    """

    years: frozenset[int]
    holidays: frozenset[date] = frozenset()         # weekdays that are rest days (statutory holidays)
    makeup_workdays: frozenset[date] = frozenset()  # weekend days that are working days (调休)
    closures: frozenset[date] = frozenset()         # local closures: rest days whatever the national schedule
    working_hours: tuple[tuple[time, time], ...] = DEFAULT_WORKING_HOURS

    def __post_init__(self):
        years = frozenset(self.years)
        for year in years:
            if not isinstance(year, int) or isinstance(year, bool):
                raise ValueError(f"a covered year must be an integer, not {year!r}")
        holidays = frozenset(_as_date(d, "holiday") for d in self.holidays)
        makeup = frozenset(_as_date(d, "makeup working day") for d in self.makeup_workdays)
        closures = frozenset(_as_date(d, "closure") for d in self.closures)
        for kind, dates in (("holiday", holidays), ("makeup working day", makeup), ("closure", closures)):
            for day in sorted(dates):
                if day.year not in years:
                    raise UnknownYear(day.year, f"{kind} {day.isoformat()}")
        for day in sorted(makeup):
            if day.weekday() < 5:
                raise ValueError(f"makeup working day {day.isoformat()} is a {day:%A}: 调休 turns a Saturday or "
                                 f"Sunday into a working day")
        both = sorted(holidays & makeup)
        if both:
            raise ValueError(f"{both[0].isoformat()} is given both as a holiday and as a makeup working day")
        object.__setattr__(self, "years", years)
        object.__setattr__(self, "holidays", frozenset(d for d in holidays if d.weekday() < 5))
        object.__setattr__(self, "makeup_workdays", makeup)
        object.__setattr__(self, "closures", closures)
        object.__setattr__(self, "working_hours", _as_working_hours(self.working_hours))

    @classmethod
    def from_chinese_calendar(cls, years: Iterable[int] | None = None,
                              working_hours=DEFAULT_WORKING_HOURS) -> WorkCalendar:
        """Seed from the `chinesecalendar` package: the given years, or every year it has data for."""
        import chinese_calendar

        if years is None:
            years = []
            year = _CHINESE_CALENDAR_FIRST_YEAR
            while _chinese_calendar_has(chinese_calendar, year):
                years.append(year)
                year += 1
        holidays: set[date] = set()
        makeup: set[date] = set()
        for year in sorted(set(years)):
            if not _chinese_calendar_has(chinese_calendar, year):
                raise UnknownYear(year, "the installed chinesecalendar package has no data for it; upgrade it "
                                        "once the schedule is out, or add the year by hand")
            first, last = date(year, 1, 1), date(year, 12, 31)
            holidays.update(chinese_calendar.get_holidays(first, last, include_weekends=False))
            makeup.update(d for d in chinese_calendar.get_workdays(first, last) if d.weekday() >= 5)
        return cls(years=frozenset(years), holidays=holidays, makeup_workdays=makeup, working_hours=working_hours)

    def with_year(self, year: int, holidays: Iterable, makeup_workdays: Iterable) -> WorkCalendar:
        """A new calendar covering `year` with this schedule; a year already covered is replaced (a correction)."""
        new_holidays = {_as_date(d, "holiday") for d in holidays}
        new_makeup = {_as_date(d, "makeup working day") for d in makeup_workdays}
        for day in sorted(new_holidays | new_makeup):
            if day.year != year:
                raise ValueError(f"{day.isoformat()} is not in {year}; give each year's schedule on its own")
        return WorkCalendar(
            years=self.years | {year},
            holidays={d for d in self.holidays if d.year != year} | new_holidays,
            makeup_workdays={d for d in self.makeup_workdays if d.year != year} | new_makeup,
            closures=self.closures,
            working_hours=self.working_hours,
        )

    def with_closures(self, dates: Iterable) -> WorkCalendar:
        """A new calendar where these dates are also rest days (a local closure: disaster, election day…)."""
        return WorkCalendar(years=self.years, holidays=self.holidays, makeup_workdays=self.makeup_workdays,
                            closures=self.closures | {_as_date(d, "closure") for d in dates},
                            working_hours=self.working_hours)

    def to_data(self) -> dict:
        """A JSON-able dict, sorted, so equal calendars give equal data and the same fingerprint."""
        return {
            "format": DATA_FORMAT,
            "years": sorted(self.years),
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "makeup_workdays": sorted(d.isoformat() for d in self.makeup_workdays),
            "closures": sorted(d.isoformat() for d in self.closures),
            "working_hours": [[f"{s:%H:%M}", f"{e:%H:%M}"] for s, e in self.working_hours],
        }

    @classmethod
    def from_data(cls, data: dict) -> WorkCalendar:
        if not isinstance(data, dict):
            raise ValueError(f"calendar data must be a dict, not {type(data).__name__}")
        if data.get("format") != DATA_FORMAT:
            raise ValueError(f"calendar data format {data.get('format')!r} is not {DATA_FORMAT}")
        missing = [key for key in ("years", "holidays", "makeup_workdays") if key not in data]
        if missing:
            raise ValueError(f"calendar data lacks {', '.join(missing)}")
        return cls(years=data["years"], holidays=data["holidays"], makeup_workdays=data["makeup_workdays"],
                   closures=data.get("closures", ()), working_hours=data.get("working_hours", DEFAULT_WORKING_HOURS))

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the canonical data: what a case records to say which calendar its deadlines used."""
        canonical = json.dumps(self.to_data(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def __repr__(self) -> str:
        span = f"{min(self.years)}–{max(self.years)}" if self.years else "none"
        return (f"WorkCalendar(years {span} ({len(self.years)}), {len(self.closures)} closures, "
                f"fingerprint {self.fingerprint[:12]})")

    def is_working_day(self, day: date | datetime) -> bool:
        """A date, or an aware datetime taken at its Beijing date."""
        day = _local_day(day)
        if day.year not in self.years:
            raise UnknownYear(day.year, f"needed for {day.isoformat()}")
        if day in self.closures:
            return False
        if day in self.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The close of working hours on the n-th working day after the start's Beijing date, in UTC.

        The start day is never counted, whatever the hour. n = 0 means the same day (当日): the start day's close
        if it is a working day not yet closed, otherwise the next working day's close.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"a number of working days must be a whole number ≥ 0, not {n!r}")
        local = _local(start)
        day = local.date()
        if n == 0:
            if self.is_working_day(day) and local <= self._close(day):
                return self._close(day).astimezone(timezone.utc)
            n = 1
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return self._close(day).astimezone(timezone.utc)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after `start`, counting only working hours of working days, in UTC.

        A limit used up exactly at a close ends at that close (not at the next opening); 0 hours gives the first
        working moment at or after `start`.
        """
        remaining = timedelta(hours=_non_negative(hours, "working hours"))
        moment = _local(start)
        day = moment.date()
        while True:
            if self.is_working_day(day):
                for opens, closes in self.working_hours:
                    begin = max(moment, datetime.combine(day, opens, BEIJING))
                    end = datetime.combine(day, closes, BEIJING)
                    if begin >= end:
                        continue
                    if remaining <= end - begin:
                        return (begin + remaining).astimezone(timezone.utc)
                    remaining -= end - begin
            day += timedelta(days=1)
            moment = datetime.combine(day, time(0), BEIJING)

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days after a's date up to and including b's date (negative when b is before a).

        The same counting as `add_working_days`: its result r for n satisfies working_days_between(start, r) == n.
        """
        first, last = _local_day(a), _local_day(b)
        if last < first:
            return -self.working_days_between(b, a)
        count, day = 0, first
        while day < last:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def add_natural_hours(self, start: datetime, hours: float) -> datetime:
        """Elapsed time, holidays or not (emergencies); needs no schedule, so never raises UnknownYear."""
        return (_local(start) + timedelta(hours=_non_negative(hours, "natural hours"))).astimezone(timezone.utc)

    def _close(self, day: date) -> datetime:
        return datetime.combine(day, self.working_hours[-1][1], BEIJING)


def _chinese_calendar_has(module, year: int) -> bool:
    try:
        module.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _local(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone; a deadline needs to know whose "
                         f"clock it is (the engine keeps UTC)")
    return moment.astimezone(BEIJING)


def _local_day(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return _local(value).date()
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a date or datetime, not {type(value).__name__}")


def _as_date(value, kind: str) -> date:
    # A datetime is refused here: its date depends on a time zone the caller did not say it meant.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{kind} {value!r} is not a date (YYYY-MM-DD)")


def _as_time(value) -> time:
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"working hour {value!r} is not HH:MM") from None
    if not isinstance(value, time) or value.tzinfo is not None:
        raise ValueError(f"working hour {value!r} must be a local time of day (Beijing), HH:MM")
    if value.second or value.microsecond:
        raise ValueError(f"working hour {value.isoformat()} must be given to the minute")
    return value


def _as_working_hours(pairs) -> tuple[tuple[time, time], ...]:
    periods = []
    for pair in pairs:
        try:
            opens, closes = pair
        except (TypeError, ValueError):
            raise ValueError(f"working hours are (start, end) pairs, not {pair!r}") from None
        periods.append((_as_time(opens), _as_time(closes)))
    if not periods:
        raise ValueError("a working day needs at least one period of working hours")
    for (opens, closes), following in zip(periods, periods[1:] + [None]):
        if opens >= closes:
            raise ValueError(f"working period {opens:%H:%M}–{closes:%H:%M} ends before it starts")
        if following is not None and following[0] < closes:
            raise ValueError(f"working periods must be in order and not overlap: {opens:%H:%M}–{closes:%H:%M} "
                             f"then {following[0]:%H:%M}–{following[1]:%H:%M}")
    return tuple(periods)


def _non_negative(hours, kind: str) -> float:
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours) or hours < 0:
        raise ValueError(f"{kind} must be a finite number ≥ 0, not {hours!r}")
    return hours
