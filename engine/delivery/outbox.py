"""Events out: what the platform learns of, written to the outbox in the transaction that caused it.

A command's events are rows beside its history event, so they commit or roll back with it: nothing is
sent for a command that failed, and nothing a command did is lost when a receiver is down. Delivery
(`webhooks.py`) reads the rows afterwards. Payloads name the case, its place and its tasks, never the
reporter: no personal data leaves through them (they are built from case and task columns, not from
the matter's data).
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from sqlalchemy.dialects import postgresql, sqlite

from engine.clock import Clock
from engine.store.db import utcnow
from engine.store.models import Case, HumanTask, OutboxEvent
from engine.deadlines.standing import YELLOW_SHARE

STATUS_CHANGED = "case.status_changed"
TASK_CREATED = "task.created"
TASK_WARNING = "task.warning"
TASK_OVERDUE = "task.overdue"
CASE_OVERDUE = "case.overdue"
DUPLICATE_LINKED = "case.duplicate_linked"   # 重复件: the platform learns which open matter a report joined
KINDS = (STATUS_CHANGED, TASK_CREATED, TASK_WARNING, TASK_OVERDUE, CASE_OVERDUE, DUPLICATE_LINKED)


def record(session, run) -> None:
    """Add the events of a command about to commit (called last in `CaseService._commit`)."""
    case, now = run.case, run.clock.now()
    events = []
    moves = run.status_moves
    if moves and moves[0][0] != case.status:
        events.append((STATUS_CHANGED, None, {"status_before": moves[0][0], "status_after": case.status,
                                              "path": [moves[0][0]] + [m[1] for m in moves]}))
    if any(m[1] == "overdue" for m in moves):
        events.append((CASE_OVERDUE, None, {"status_before": moves[0][0], "status_after": case.status}))
    if "duplicate_of" in run.notes:
        events.append((DUPLICATE_LINKED, None, {"duplicate_of": run.notes["duplicate_of"]}))
    for row, before, after in run.task_moves:
        if before is None:
            events.append((TASK_CREATED, row, {}))
        elif after == "overdue":
            events.append((TASK_OVERDUE, row, {}))
    if not events:
        return
    recorded, case_part, rows = utcnow(), _case_part(case), []
    for kind, row, extra in events:
        payload = {"case": case_part, **extra}
        if row is not None:
            payload["task"] = _task_part(row, _deadline(run.workflow, row.spiff_task_id))
        rows.append({"uid": str(uuid.uuid4()), "kind": kind, "case_id": case.id,
                     "task_spiff_id": row.spiff_task_id if row is not None else None, "payload": payload,
                     "occurred_at": now, "recorded_at": recorded, "once_key": None, "routed_at": None})
    # A plain multi-row insert on the command's connection, not ORM objects: nothing to track, no ids to
    # read back, and no autoflush (Session.execute would flush here, and the timer sweep would lose its
    # one flush per batch: measured 1.5x slower firing). The case row exists: a new case was flushed for
    # its id.
    session.connection().execute(_INSERT, rows)


_INSERT = OutboxEvent.__table__.insert()


def _case_part(case: Case) -> dict:
    return {"id": case.id, "process_key": case.process_key, "status": case.status, "grid_code": case.grid_code,
            "duplicate_of": case.duplicate_of,
            "unit": case.unit, "level": case.level, "sub_category": case.sub_category, "urgency": case.urgency}


def _task_part(row: HumanTask, deadline: datetime | None) -> dict:
    # The task's id is not here: it is the event row's `task_id`, added to the body when it is sent.
    return {"element": row.element_id, "name": row.name, "role": row.role, "unit": row.unit,
            "agency_level": row.agency_level, "state": row.state,
            "deadline": deadline.isoformat() if deadline else None}


def _deadline(workflow, spiff_task_id: str) -> datetime | None:
    """The due time of the timer on a task's boundary, waiting or just fired."""
    try:
        task = workflow.get_task_from_id(uuid.UUID(spiff_task_id))
    except Exception:  # a task SpiffWorkflow already dropped has no deadline left to report
        return None
    parent = task.parent if task is not None else None
    for sibling in (parent.children if parent else []):
        spec = sibling.task_spec
        if isinstance(spec, BoundaryEvent) and isinstance(spec.event_definition, TimerEventDefinition):
            due = sibling.internal_data.get("event_value")
            if isinstance(due, str):
                return TimerEventDefinition.get_datetime(due)
    return None


class Outbox:
    """Events that no command causes: warnings (预警), found by looking at the deadlines."""

    def __init__(self, sessions, readers, deadlines):
        self._sessions = sessions
        self._readers = readers
        self._deadlines = deadlines

    def emit_warnings(self, clock: Clock, *, yellow_share: float = YELLOW_SHARE) -> int:
        """A task.warning for each dispatched task that crossed into yellow, once per task and deadline
        (an approved extension moves the deadline, and crossing the new yellow line warns again).
        Returns how many were written. Several processes may call this at once."""
        now = clock.now()
        yellow = {f"{TASK_WARNING}:{s.task_id}:{s.due_at.isoformat()}": s
                  for s in self._deadlines.standing(now, yellow_share=yellow_share, warning="yellow")}
        if not yellow:
            return 0
        with self._sessions() as session, session.begin():
            known = set(session.scalars(sa.select(OutboxEvent.once_key)
                                        .where(OutboxEvent.once_key.in_(list(yellow)))))
            fresh = {key: s for key, s in yellow.items() if key not in known}
            if not fresh:
                return 0
            rows = {task.id: (task, case) for task, case in session.execute(
                sa.select(HumanTask, Case).join(Case, Case.id == HumanTask.case_id)
                .where(HumanTask.id.in_([s.task_id for s in fresh.values()])))}
            recorded, written = utcnow(), 0
            insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(OutboxEvent)
            for key, standing in fresh.items():
                task, case = rows[standing.task_id]
                payload = {"case": _case_part(case), "task": _task_part(task, standing.due_at),
                           "share_used": round(standing.share_used, 4), "yellow_share": yellow_share,
                           "started_at": standing.started_at.isoformat(),
                           "extension_days": standing.extension_days}
                # Another process may be writing the same warning now: the unique key keeps one.
                result = session.execute(insert.values(
                    uid=str(uuid.uuid4()), kind=TASK_WARNING, case_id=case.id, task_spiff_id=task.spiff_task_id,
                    payload=payload,
                    occurred_at=now, recorded_at=recorded, once_key=key).on_conflict_do_nothing()
                    .returning(OutboxEvent.id))
                written += result.first() is not None
        return written
