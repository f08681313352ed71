"""The engine clock: every command reads time from one object passed to it, never from a global.

Tests and audit replays hand in a fixed clock; production uses the system clock. SpiffWorkflow's timers
read the same clock through the script engine (see `spiff.py`), so a timer fires by the command's time.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that stands still until moved: deterministic tests and replays."""

    def __init__(self, at: datetime):
        self._at = as_utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = as_utc(at)

    def advance(self, **delta: float) -> datetime:
        self._at += timedelta(**delta)
        return self._at


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; the engine keeps UTC")
    return value.astimezone(timezone.utc)


SYSTEM_CLOCK = SystemClock()
