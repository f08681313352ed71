"""Where each dispatched task stands against its deadline: the warnings (预警) the platform shows.

Yellow once a share of the time (limit plus approved extension; 70% by default) is used, red when
overdue; a task not signed for within its sign-for limit is flagged too. Computed from the timer index
and task rows at the time asked, so it is never stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from rules.calendar import UnknownYear
from rules.time_limits import UnknownSubCategory

from engine.execution.functions import time_limits
from engine.store.models import Case, HumanTask, Timer

YELLOW_SHARE = 0.7
DEFAULT_SIGN_FOR_HOURS = 2  # when the matter's kind is not in the time-limit table
_RUNNING = ("offered", "signed_for", "in_progress", "extension_requested")


@dataclass(frozen=True)
class Standing:
    case_id: int
    task_id: int
    element_id: str
    unit: str | None
    warning: str  # green, yellow, red
    started_at: datetime | None
    due_at: datetime | None
    extension_days: int
    share_used: float | None
    sign_for_overdue: bool


class DeadlineBoard:
    def __init__(self, readers, calendars):
        self._readers = readers
        self._calendars = calendars

    def standing(self, now: datetime, *, yellow_share: float = YELLOW_SHARE, unit: str | None = None,
                 warning: str | None = None) -> list[Standing]:
        if not 0 < yellow_share < 1:
            raise ValueError("the yellow share is a fraction between 0 and 1")
        query = (sa.select(HumanTask, Case.sub_category, Case.urgency, Timer)
                 .join(Case, Case.id == HumanTask.case_id)
                 .outerjoin(Timer, sa.and_(Timer.case_id == HumanTask.case_id, Timer.state == "pending"))
                 .where(HumanTask.unit.is_not(None), HumanTask.state.in_(_RUNNING + ("overdue",)),
                        Case.status != "suspended")   # 挂账: off the clock, no warning
                 .order_by(HumanTask.id))
        if unit is not None:
            query = query.where(HumanTask.unit == unit)
        _, calendar = self._calendars.current()
        found, seen = [], set()
        with self._readers() as session:
            for task, sub_category, urgency, timer in session.execute(query.order_by(Timer.due_at)):
                if task.id in seen:  # a case waiting on several timers: the earliest is this task's deadline
                    continue
                seen.add(task.id)
                item = self._standing(task, sub_category, urgency, timer, now, yellow_share, calendar)
                if warning is None or item.warning == warning:
                    found.append(item)
        return found

    @staticmethod
    def _standing(task, sub_category, urgency, timer, now, yellow_share, calendar) -> Standing:
        started = due = share = None
        if task.state == "overdue":
            colour = "red"
        elif timer is None:
            colour = "green"
        else:
            started, due = timer.created_at, timer.due_at
            span = (due - started).total_seconds()
            share = (now - started).total_seconds() / span if span > 0 else 1.0
            colour = "red" if now > due else "yellow" if share >= yellow_share else "green"
        return Standing(task.case_id, task.id, task.element_id, task.unit, colour, started, due,
                        task.extension_granted_days, share, _sign_for_late(task, sub_category, urgency, now, calendar))


def _sign_for_late(task, sub_category, urgency, now, calendar) -> bool:
    if task.state != "offered":
        return False
    try:
        limit = time_limits().limit(sub_category or "", urgency or "normal")
        deadline = limit.sign_for_deadline(task.created_at, calendar)
    except (UnknownSubCategory, ValueError):
        try:
            deadline = calendar.add_working_hours(task.created_at, DEFAULT_SIGN_FOR_HOURS)
        except UnknownYear:
            return False
    except UnknownYear:
        return False
    return now > deadline
