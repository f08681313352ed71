"""The timer index and the sweep that fires due timers.

SpiffWorkflow keeps a timer's due time inside the case state; the `timers` table mirrors every waiting
timer of every case so that "what is due?" is one indexed query. The sweep claims due cases (row locks
with SKIP LOCKED on PostgreSQL; SQLite's single writer lock), fires each case's due timers as an
ordinary engine command in the claiming transaction, and commits: a timer fires once, with one worker or
several, and a sweep after downtime fires everything that fell due meanwhile.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.clock import Clock
from engine.errors import EngineError
from engine.store.models import Case, Timer
from engine.execution.spiff import event_definitions

log = logging.getLogger("gridflow.timers")


@dataclass(frozen=True)
class WaitingTimer:
    spiff_task_id: str
    element_id: str
    name: str
    due_at: datetime | None  # None until SpiffWorkflow first evaluates the timer's expression


def waiting_timers(workflow) -> list[WaitingTimer]:
    """Timers the case waits on; an event-based gateway waits on its timer through the gateway task."""
    found = []
    for task in workflow.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        timers = [d for d in event_definitions(definition) if isinstance(d, TimerEventDefinition)]
        if not timers:
            continue
        due = task.internal_data.get("event_value")
        if isinstance(due, dict):   # a cycle timer: its next repetition, while it has repetitions left
            due = due.get("next") if due.get("cycles") != 0 else None
        found.append(WaitingTimer(str(task.id), task.task_spec.bpmn_id, timers[0].name or task.task_spec.bpmn_id,
                                  TimerEventDefinition.get_datetime(due) if isinstance(due, str) else None))
    return found


def any_due(workflow, now: datetime) -> bool:
    # Strictly after the due time, as SpiffWorkflow fires; an unevaluated timer is checked by running.
    return any(t.due_at is None or t.due_at < now for t in waiting_timers(workflow))


def sync(session, case: Case, workflow, now: datetime) -> list[list]:
    """Bring the case's rows in `timers` in line with its workflow; returns the changes, for history.

    A pending timer that left the workflow fired if it was past due (every command lets due timers fire
    before it acts), otherwise its task ended first and it is cancelled."""
    held = dict(case.pending_timers or {})
    wanted = {t.spiff_task_id: t for t in waiting_timers(workflow) if t.due_at is not None}
    changes = []
    gone = [tid for tid in held if tid not in wanted]
    moved = [tid for tid, t in wanted.items() if tid in held and held[tid] != t.due_at.isoformat()]
    if (gone or moved) and case.id is not None:
        with session.no_autoflush:
            rows = {r.spiff_task_id: r for r in session.scalars(
                sa.select(Timer).where(Timer.case_id == case.id, Timer.state == "pending",
                                       Timer.spiff_task_id.in_(gone + moved)))}
        for tid in gone:
            row = rows.get(tid)
            if row is not None:
                row.state = "fired" if row.due_at < now else "cancelled"
                row.ended_at = now
                changes.append([row.element_id, row.due_at.isoformat(), row.state])
        for tid in moved:
            row = rows.get(tid)
            if row is not None:
                row.due_at = wanted[tid].due_at
                changes.append([row.element_id, row.due_at.isoformat(), "moved"])
    for tid, timer in wanted.items():
        if tid not in held:
            session.add(Timer(case=case, spiff_task_id=tid, element_id=timer.element_id, name=timer.name,
                              due_at=timer.due_at, state="pending", created_at=now))
            changes.append([timer.element_id, timer.due_at.isoformat(), "armed"])
    case.pending_timers = {tid: t.due_at.isoformat() for tid, t in wanted.items()}
    return changes


PENDING = sa.literal_column("'pending'")
CLAIM_WINDOW = 10  # due timers looked at per case claimed: room for several workers' batches


class _CaseFailed(Exception):
    pass


def _has_due(case: Case, now: datetime) -> bool:
    return any(datetime.fromisoformat(due) < now for due in (case.pending_timers or {}).values())


@dataclass
class SweepResult:
    claimed: int = 0
    fired_cases: int = 0
    failed_cases: int = 0
    errors: list[str] = field(default_factory=list)


class TimerService:
    """Finds due timers and fires them through the case service, in batches of cases."""

    def __init__(self, sessions, readers, cases):
        self._sessions = sessions
        self._readers = readers
        self._cases = cases

    def claim(self, session, now: datetime, limit: int) -> list[Case]:
        """Lock up to `limit` cases with due timers, earliest due first.

        The timers side is bounded by due time: without that, PostgreSQL misjudges how many pending rows
        are due once many have fired and walks every case (measured at 1M timers: 323 ms for an idle
        sweep; 0.6 ms with the bound). 'pending' is a literal so a prepared plan can still use the
        partial index. SKIP LOCKED lets a second worker take the next cases instead of waiting; SQLite
        drops it, and its BEGIN IMMEDIATE makes the sweep the only writer anyway."""
        due = (sa.select(Timer.case_id).where(Timer.state == PENDING, Timer.due_at < now)
               .order_by(Timer.due_at).limit(limit * CLAIM_WINDOW))
        query = (sa.select(Case).where(Case.id.in_(due)).order_by(Case.id).limit(limit)
                 .with_for_update(skip_locked=True))
        return list(session.scalars(query))

    def sweep_batch(self, clock: Clock, *, worker: str, batch: int = 100) -> SweepResult:
        """One transaction: claim a batch of due cases and fire them. The batch first runs without a
        savepoint per case (they cost a third of a firing); if a case fails, the batch is rolled back and
        run again with one savepoint per case, so the failing case is set aside and the rest still fire."""
        try:
            return self._sweep_batch(clock, worker, batch, isolate=False)
        except _CaseFailed:
            return self._sweep_batch(clock, worker, batch, isolate=True)

    def _sweep_batch(self, clock: Clock, worker: str, batch: int, *, isolate: bool) -> SweepResult:
        result = SweepResult()
        now = clock.now()
        with self._cases.transaction() as session:
            cases = self.claim(session, now, batch)
            result.claimed = len(cases)
            tasks = self._cases.tasks_of(session, [c.id for c in cases])
            for case in cases:
                if not _has_due(case, now):  # another worker fired it between our claim query and lock
                    continue
                if not isolate:
                    try:
                        fired = self._cases.fire_due_timers(session, case.id, clock=clock, actor=worker,
                                                            tasks=tasks.get(case.id, []))
                    except EngineError as exc:
                        raise _CaseFailed from exc
                    result.fired_cases += fired
                    continue
                try:
                    with session.begin_nested():
                        fired = self._cases.fire_due_timers(session, case.id, clock=clock, actor=worker,
                                                            tasks=tasks.get(case.id, []))
                    result.fired_cases += fired
                except EngineError as exc:
                    # A definition that fails when its timer fires must not be retried forever: the timer
                    # is marked with the error for an operator, and the sweep goes on.
                    result.failed_cases += 1
                    result.errors.append(f"case {case.id}: {exc}")
                    log.error("timer of case %s failed: %s", case.id, exc)
                    session.execute(sa.update(Timer).where(Timer.case_id == case.id, Timer.state == PENDING,
                                                           Timer.due_at < now)
                                    .values(state="error", error=str(exc), ended_at=now))
        return result

    def sweep(self, clock: Clock, *, worker: str = "worker", batch: int = 100, progress=None) -> SweepResult:
        """Fire every timer due by `clock`, batch after batch, until none is left."""
        total = SweepResult()
        while True:
            result = self.sweep_batch(clock, worker=worker, batch=batch)
            total.fired_cases += result.fired_cases
            total.failed_cases += result.failed_cases
            total.errors += result.errors
            if progress is not None and (result.fired_cases or result.failed_cases):
                progress(total)
            if result.claimed < batch:
                return total

    def next_due(self) -> datetime | None:
        with self._readers() as session:
            return session.scalar(sa.select(sa.func.min(Timer.due_at)).where(Timer.state == "pending"))

    def pending(self, case_id: int | None = None) -> list[Timer]:
        with self._readers() as session:
            query = sa.select(Timer).where(Timer.state == "pending").order_by(Timer.due_at)
            if case_id is not None:
                query = query.where(Timer.case_id == case_id)
            return list(session.scalars(query))
