"""The domain functions a definition's expressions may call, bound to the command's clock and to the
working-day calendar in force (loaded only when a deadline is actually computed)."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from rules.calendar import UnknownYear
from rules.grid_codes import InvalidDivisionCode, InvalidGridCode
from rules.levels import next_level
from rules.routing import NoRoute, RoutingTable, load_city_routing, load_routing
from rules.time_limits import TimeLimitTable, UnknownSubCategory, load_time_limits

from engine.clock import Clock
from engine.errors import unknown_year
from engine.execution.expressions import ExpressionError, SafeScriptEngine

MAX_OFFSET_DAYS = 3660


@lru_cache(maxsize=1)
def time_limits() -> TimeLimitTable:
    """The 立结案标准 table shipped in rules/data, validated once per process."""
    return load_time_limits()


@lru_cache(maxsize=1)
def routing() -> RoutingTable:
    """The routing table shipped in rules/data, checked for ties and gaps against the time-limit table."""
    return load_routing(sub_categories=time_limits().sub_categories)


@lru_cache(maxsize=1)
def city_routing() -> RoutingTable:
    """The sample city's routing table (rules/data/city), for matters escalated to the city level."""
    return load_city_routing(sub_categories=time_limits().sub_categories)


def _parse(moment: str) -> datetime:
    try:
        value = datetime.fromisoformat(str(moment))
    except ValueError:
        raise ExpressionError(f"not an ISO-8601 date-time: {moment!r}") from None
    if value.tzinfo is None:
        raise ExpressionError(f"date-time {moment!r} has no time zone")
    return value


def _offset(moment: str, delta: timedelta) -> str:
    if abs(delta) > timedelta(days=MAX_OFFSET_DAYS):
        raise ExpressionError(f"offset of {delta} is out of range")
    return (_parse(moment) + delta).isoformat()


def add_days(moment: str, days: int | float) -> str:
    return _offset(moment, timedelta(days=days))


def add_hours(moment: str, hours: int | float) -> str:
    return _offset(moment, timedelta(hours=hours))


def _level_up(level: str) -> str:
    try:
        return next_level(level)
    except ValueError as exc:
        raise ExpressionError(str(exc)) from None


class Deadlines:
    """Working-day arithmetic and routing for one command; remembers which calendar, time-limit and
    routing versions it used, so the command's history event can name them and a replay can compute the
    same deadlines and units."""

    def __init__(self, calendars):
        self._calendars = calendars
        self.calendar_version: int | None = None
        self.time_limits_version: str | None = None
        self.routing_version: str | None = None
        self._calendar = None

    def calendar(self):
        if self._calendar is None:
            if self._calendars is None:
                raise ExpressionError("no working-day calendar is available to this engine")
            self.calendar_version, self._calendar = self._calendars.current()
        return self._calendar

    def time_limit_table(self) -> TimeLimitTable:
        """The 立结案标准 table a command uses: the shipped one (an audit replay pins the recorded version)."""
        return time_limits()

    def routing_table(self) -> RoutingTable:
        return routing()

    def _compute(self, compute):
        try:
            return compute(self.calendar()).isoformat()
        except UnknownYear as exc:
            raise ExpressionError(str(unknown_year(exc))) from None
        except ValueError as exc:
            raise ExpressionError(str(exc)) from None

    def add_working_days(self, moment: str, days: int) -> str:
        return self._compute(lambda cal: cal.add_working_days(_parse(moment), days))

    def add_working_hours(self, moment: str, hours: int | float) -> str:
        return self._compute(lambda cal: cal.add_working_hours(_parse(moment), hours))

    def handling_deadline(self, moment: str, sub_category: str, urgency: str = "normal") -> str:
        """The deadline from the time-limit table for this kind of matter, counted from `moment`."""
        table = self.time_limit_table()
        try:
            limit = table.limit(sub_category, urgency)
        except UnknownSubCategory as exc:
            raise ExpressionError(str(exc)) from None
        self.time_limits_version = table.version
        return self._compute(lambda cal: limit.deadline(_parse(moment), cal))

    def route(self, sub_category, level, grid_code):
        """Routing is a whitelisted function rather than a DMN table: it needs area-prefix specificity,
        a fallback to higher levels and tie/gap checks when the table loads, none of which SpiffWorkflow's
        DMN offers (its UNIQUE policy does not even check uniqueness)."""
        if str(level) == "city":
            # The city dispatches from its own table; only the county table's version is recorded (the city
            # table is shipped and fixed, so a replay finds the same one).
            try:
                return city_routing().route(str(sub_category), "city", str(grid_code))
            except (NoRoute, InvalidGridCode, InvalidDivisionCode, ValueError) as exc:
                raise ExpressionError(f"no unit to route to: {exc}") from None
        table = self.routing_table()
        try:
            found = table.route(str(sub_category), str(level), str(grid_code))
        except (NoRoute, InvalidGridCode, InvalidDivisionCode, ValueError) as exc:
            raise ExpressionError(f"no unit to route to: {exc}") from None
        self.routing_version = table.version
        return found

    def route_unit(self, sub_category, level, grid_code) -> str:
        """The lead unit (主办) for this kind of matter at this level in this grid."""
        return self.route(sub_category, level, grid_code).lead_unit

    def route_assisting(self, sub_category, level, grid_code) -> list:
        """The assisting units (协办)."""
        return list(self.route(sub_category, level, grid_code).assisting_units)

    def used(self) -> dict:
        used = {}
        if self.routing_version is not None:
            used["routing"] = self.routing_version
        if self.calendar_version is not None:
            used["calendar"] = self.calendar_version
        if self.time_limits_version is not None:
            used["time_limits"] = self.time_limits_version
        return used


def functions(clock: Clock | None, deadlines: Deadlines | None) -> dict:
    return {"now": lambda: clock.now().isoformat(), "add_days": add_days, "add_hours": add_hours,
            "next_level": _level_up,
            "add_working_days": deadlines.add_working_days if deadlines else None,
            "add_working_hours": deadlines.add_working_hours if deadlines else None,
            "handling_deadline": deadlines.handling_deadline if deadlines else None,
            "route_unit": deadlines.route_unit if deadlines else None,
            "route_assisting": deadlines.route_assisting if deadlines else None}


def script_engine(clock: Clock, calendars=None, deadlines: Deadlines | None = None) -> SafeScriptEngine:
    deadlines = deadlines or Deadlines(calendars)
    engine = SafeScriptEngine(functions=functions(clock, deadlines), clock=clock)
    engine.deadlines = deadlines
    return engine


# Names a definition may call, for deploy-time checks that run without a clock or calendar.
FUNCTION_NAMES = frozenset(functions(None, None))
