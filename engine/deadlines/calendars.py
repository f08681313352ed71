"""The working-day calendar in force, stored as versions so every deadline can say which one it used.

The first version is seeded from the `chinesecalendar` package; administrators add next year's schedule
when the State Council publishes it, or a local closure, each as a new version. Deadlines use the newest
version; a history event records the version its deadlines were computed with, so a replay computes the
same ones.
"""
from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rules.calendar import WorkCalendar

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import EngineError
from engine.store.models import CalendarVersion


class CalendarMissing(EngineError):
    code = "calendar_missing"


class CalendarStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers
        self._cache: dict[int, WorkCalendar] = {}
        self._lock = threading.Lock()

    def current(self) -> tuple[int, WorkCalendar]:
        with self._readers() as session:
            row_id = session.scalar(sa.select(sa.func.max(CalendarVersion.id)))
        if row_id is None:
            raise CalendarMissing("the database has no working-day calendar yet; run `gridflow migrate`, "
                                  "which seeds it")
        return row_id, self.get(row_id)

    def ensure_seeded(self) -> None:
        """Seed the first version on a new database (part of migrating it, before any command runs:
        a command holding SQLite's write lock could not write it)."""
        with self._readers() as session:
            if session.scalar(sa.select(sa.func.count(CalendarVersion.id))):
                return
        self.seed()

    def get(self, version_id: int) -> WorkCalendar:
        calendar = self._cache.get(version_id)
        if calendar is None:
            with self._readers() as session:
                row = session.get(CalendarVersion, version_id)
                if row is None:
                    raise LookupError(f"no calendar version {version_id}")
                calendar = WorkCalendar.from_data(row.data)
            with self._lock:
                self._cache[version_id] = calendar
        return calendar

    def seed(self, clock: Clock | None = None) -> tuple[int, WorkCalendar]:
        """The first version, from the chinesecalendar package (every year it knows)."""
        return self._save(WorkCalendar.from_chinese_calendar(), "seeded from chinesecalendar", "system", clock)

    def add_year(self, year: int, holidays, makeup_workdays, *, by: str, clock: Clock | None = None):
        _, calendar = self.current()
        return self._save(calendar.with_year(year, holidays, makeup_workdays), f"schedule of {year}", by, clock)

    def add_closures(self, dates, *, by: str, note: str = "", clock: Clock | None = None):
        _, calendar = self.current()
        return self._save(calendar.with_closures(dates), note or "local closure", by, clock)

    @staticmethod
    def _find(session, calendar: WorkCalendar) -> int | None:
        return session.scalar(sa.select(CalendarVersion.id).where(CalendarVersion.fingerprint == calendar.fingerprint))

    def versions(self) -> list[CalendarVersion]:
        with self._readers() as session:
            return list(session.scalars(sa.select(CalendarVersion).order_by(CalendarVersion.id)))

    def _save(self, calendar: WorkCalendar, note: str, by: str, clock: Clock | None):
        now = (clock or SYSTEM_CLOCK).now()
        try:
            with self._sessions() as session, session.begin():
                version_id = self._find(session, calendar)
                if version_id is None:
                    row = CalendarVersion(fingerprint=calendar.fingerprint, data=calendar.to_data(), note=note,
                                          created_at=now, created_by=by)
                    session.add(row)
                    session.flush()
                    version_id = row.id
        except IntegrityError:  # another process saved the same calendar first (two workers seeding)
            with self._readers() as session:
                version_id = self._find(session, calendar)
        with self._lock:
            self._cache[version_id] = calendar
        return version_id, calendar
