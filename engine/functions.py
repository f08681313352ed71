"""The domain functions a definition's expressions may call, bound to the command's clock."""
from __future__ import annotations

from datetime import datetime, timedelta

from rules.levels import next_level

from .clock import Clock
from .expressions import ExpressionError, SafeScriptEngine

MAX_OFFSET_DAYS = 3660


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


def functions(clock: Clock) -> dict:
    return {"now": lambda: clock.now().isoformat(), "add_days": add_days, "add_hours": add_hours,
            "next_level": _level_up}


def script_engine(clock: Clock) -> SafeScriptEngine:
    return SafeScriptEngine(functions=functions(clock), clock=clock)


# Names a definition may call, for deploy-time checks that run without a clock.
FUNCTION_NAMES = frozenset(functions(None))
