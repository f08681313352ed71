"""The statistics projection: what each command adds to `stat_facts`, decided from what the command did
(its status moves, task moves, timers and payload) in the command's own transaction.

Each fact names the moment that decides its period (`period_at`) and carries its verdict (`on_time`),
worked out once, when it happens, by the rules then in force (named in `rules`). Nothing computed later
can change a past verdict, which is what keeps figures of a past period the same tomorrow."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from rules.calendar import BEIJING, UnknownYear
from rules.time_limits import UnknownSubCategory

from engine.definitions.status_paths import properties
from engine.store.models import CalendarVersion, StatFact

# Statuses a handling round ends in for the clock: an overdue span ends here.
_ENDS_CLOCK = ("closed", "cancelled", "not_filed", "self_resolved")
# Filing (立案) on time: within this many working hours of the report. The time-limit table has no filing
# limit; this is the statistics rule, versioned with the figures (figures.RULES_VERSION).
FILING_LIMIT_WORKING_HOURS = 8
# Signing for a task without a sub-category the time-limit table knows.
DEFAULT_SIGN_FOR_HOURS = 2
SPAN_KINDS = ("overdue", "suspended")
# Processes whose cases are not grid matters (a county's matter-list change is the county's own paperwork).
NOT_COUNTED = frozenset({"matter_list_change"})


def working_hours_between(calendar, start: datetime, end: datetime) -> float | None:
    """Working time between two moments, in hours, by the calendar's working days and hours; None when the
    calendar does not know a year in between."""
    if end <= start:
        return 0.0
    try:
        a, b = start.astimezone(BEIJING), end.astimezone(BEIJING)
        total = timedelta()
        day = a.date()
        while day <= b.date():
            if calendar.is_working_day(day):
                for opens, closes in calendar.working_hours:
                    begin = max(a, datetime.combine(day, opens, BEIJING))
                    finish = min(b, datetime.combine(day, closes, BEIJING))
                    if finish > begin:
                        total += finish - begin
            day += timedelta(days=1)
        return round(total.total_seconds() / 3600, 4)
    except UnknownYear:
        return None


class _Facts:
    def __init__(self, session, run, event):
        self.session, self.run, self.event = session, run, event
        self.case = run.case
        self.now = event.clock_time
        self.deadlines = run.workflow.script_engine.deadlines
        self.calendar_version, self._calendar = None, None

    def add(self, kind, *, at=None, period_at=None, unit=None, on_time=None, amount=None, n=0, due_at=None,
            rules=None):
        case = self.case
        at = at or self.now
        period_at = period_at or at
        self.session.add(StatFact(
            case_id=case.id, seq=self.event.seq, kind=kind, at=at, period_at=period_at,
            day=period_at.astimezone(BEIJING).date().toordinal(),
            grid_code=case.grid_code, unit=unit if unit is not None else case.unit, worker=case.stat_worker,
            category=case.category, sub_category=case.sub_category,
            process=f"{case.process_key}:{self.run.loaded.info.version}", round=case.stat_round,
            on_time=on_time, amount=amount, n=n, due_at=due_at, rules=rules))

    def calendar(self):
        """The calendar the command used; else the current one, looked up in the command's own transaction
        (the store caches calendars by version: one small query, no second connection)."""
        loaded = getattr(self.deadlines, "_calendar", None)
        if loaded is not None:
            return loaded
        if self.calendar_version is None:
            store = getattr(self.deadlines, "_calendars", None)
            if store is None:
                return None    # an engine built without calendars: no working-time verdicts
            with self.session.no_autoflush:
                self.calendar_version = self.session.scalar(sa.select(sa.func.max(CalendarVersion.id)))
            if self.calendar_version is None:
                return None
            self._calendar = store.get(self.calendar_version)
        return self._calendar

    def rules(self, *names) -> str:
        used = {"calendar": self.deadlines.calendar_version or self.calendar_version,
                "time_limits": self.deadlines.time_limits_version}
        return ";".join(f"{k}={used[k]}" for k in names if used.get(k) is not None) or None

    def hours(self, start, end):
        calendar = self.calendar()
        return None if calendar is None or start is None else working_hours_between(calendar, start, end)

    # -- spans --------------------------------------------------------------------------------------

    def open_overdue(self, at):
        if self.case.stat_overdue_since is None:
            self.case.stat_overdue_since = at
            self.case.stat_late = True
            self.add("overdue", at=at)

    def close_span(self, kind):
        column = "stat_overdue_since" if kind == "overdue" else "stat_suspended_since"
        if getattr(self.case, column) is None:
            return
        self.session.execute(sa.update(StatFact).where(StatFact.case_id == self.case.id, StatFact.kind == kind,
                                                       StatFact.until.is_(None)).values(until=self.now))
        setattr(self.case, column, None)


def record(session, run, event) -> None:
    """Write the facts of one command (called by the command path after its history event)."""
    if run.loaded.lifecycle.NAME in NOT_COUNTED:
        return
    f = _Facts(session, run, event)
    case = f.case
    command, payload = event.command, event.payload or {}
    if command == "start":
        case.stat_worker = event.actor
        f.add("reported")
    if command == "link_duplicate":
        f.close_span("overdue")
        f.close_span("suspended")
        f.add("duplicate")
    elements = run.loaded.elements
    completed = next((row for row, before, after in run.task_moves if after == "completed"), None)
    spec = elements.get(completed.element_id) if completed is not None else None
    if spec is not None and event.status_before == "verifying" and properties(spec).get("status") == "verifying":
        f.add("check", on_time=not any(m[1] == "rework" for m in run.status_moves))
    for row, before, after in run.task_moves:
        if after == "overdue" and before != "overdue":
            fired = [datetime.fromisoformat(t[1]) for t in (event.effects.get("timers") or []) if t[2] == "fired"]
            f.open_overdue(min(fired) if fired else f.now)
        elif after == "returned" and before != "returned":
            f.add("returned", unit=row.unit)
        elif after == "explanation_submitted":
            f.add("explanation", unit=row.unit)
        elif command == "sign_for" and before in ("offered", "overdue") and after in ("signed_for", "overdue") \
                and row.id == payload.get("task_id"):
            _signed(f, row)
        elif command == "decide_extension" and payload.get("approve") and after == "in_progress":
            granted = row.extension_days or 0
            first = row.extension_granted_days == granted
            f.add("extension", unit=row.unit, amount=float(granted), n=1 if first else 0)
    for before, target, trigger, element in run.status_moves:
        if before is None:
            continue
        _status_move(f, before, target, trigger)
    if command == "message" and isinstance(payload.get("payload"), dict) and "satisfied" in payload["payload"]:
        f.add("follow_up", on_time=bool(payload["payload"]["satisfied"]))


def _signed(f: _Facts, row) -> None:
    case = f.case
    dispatched = case.stat_dispatched_at
    on_time, rules = None, None
    calendar = f.calendar()
    if dispatched is not None and calendar is not None:
        try:
            table = f.deadlines.time_limit_table()
            try:
                limit = table.limit(case.sub_category, case.urgency or "normal") if case.sub_category else None
            except (UnknownSubCategory, ValueError):
                limit = None
            due = limit.sign_for_deadline(dispatched, calendar) if limit is not None else \
                calendar.add_working_hours(dispatched, DEFAULT_SIGN_FOR_HOURS)
            on_time = f.now <= due
            rules = f"time_limits={table.version};calendar={f.deadlines.calendar_version or f.calendar_version}"
        except UnknownYear:
            on_time = None
    # Counted in the period of its dispatch: the share of a period's dispatches signed for in time.
    f.add("signed", unit=row.unit, on_time=bool(on_time), period_at=dispatched or f.now, rules=rules)


def _status_move(f: _Facts, before: str, target: str, trigger: str) -> None:
    case = f.case
    if before == "suspended":
        f.close_span("suspended")
        if trigger == "resume":
            f.add("resumed")
            if target == "overdue":
                f.open_overdue(f.now)
            return
        # Otherwise the matter moves on from suspension (the unit reports back): that move counts below.
    if target == "registered":
        hours = f.hours(case.created_at, f.now)
        f.add("filed", on_time=hours is not None and hours <= FILING_LIMIT_WORKING_HOURS, amount=hours,
              rules=f.rules("calendar"))
    elif target == "not_filed":
        f.add("not_filed")
    elif target == "self_resolved":
        f.add("self_resolved")
    elif target == "dispatched":
        f.close_span("overdue")
        case.stat_round += 1
        case.stat_dispatched_at = f.now
        case.stat_late = False
        case.stat_reworks = 0
        due = _handling_due(f)
        f.add("dispatched", due_at=due, rules=f.rules("time_limits", "calendar"))
    elif target == "feedback_submitted" and before != "rework":
        f.add("feedback", on_time=not case.stat_late, amount=f.hours(case.stat_dispatched_at, f.now))
    elif target == "rework":
        case.stat_reworks += 1
    elif target == "closed":
        if trigger == "close_as_duplicate":
            return
        f.close_span("overdue")
        f.close_span("suspended")
        dispatched = case.stat_dispatched_at is not None
        f.add("closed", on_time=dispatched and not case.stat_late, n=case.stat_reworks,
              amount=f.hours(case.stat_dispatched_at, f.now))
    elif target == "reopened":
        f.add("reopened")
    elif target == "suspended":
        f.close_span("overdue")
        case.stat_suspended_since = f.now
        f.add("suspended")
    elif target == "cancelled":
        f.close_span("overdue")
        f.close_span("suspended")
        f.add("cancelled")
    if target in _ENDS_CLOCK:
        f.close_span("overdue")


def _handling_due(f: _Facts):
    """The deadline the dispatch armed: the latest timer armed by this command on a task."""
    armed = [datetime.fromisoformat(t[1]) for t in (f.event.effects.get("timers") or []) if t[2] == "armed"]
    return max(armed).astimezone(timezone.utc) if armed else None
