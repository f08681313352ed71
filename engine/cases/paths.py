"""Reads the web console draws that the API's views do not carry: the path a case took through its
diagram (elements done, elements open, timers waiting), and the deadline colour of a page of tasks.

Both read under the principal's scope, like every other view: a case out of scope is not found.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from SpiffWorkflow.util.task import TaskState

from engine.access import scopes
from engine.access.scopes import Principal
from engine.deadlines.standing import YELLOW_SHARE
from engine.errors import NotFound
from engine.store.models import Case, HumanTask, Timer


@dataclass(frozen=True)
class CasePath:
    case_id: int
    definition_id: int
    process_key: str
    diagram: str              # the BPMN XML of the case's pinned definition (the file holding its process)
    done: list[str]           # element ids completed at least once, in the order first completed
    active: list[str]         # element ids of ready or started tasks (the open human tasks among them)
    waiting: list[dict]       # [{"element_id", "due_at"}]: timers and message events the case waits on


@dataclass(frozen=True)
class Deadline:
    task_id: int
    colour: str               # green, yellow, red; "none" without a running deadline
    due_at: datetime | None
    share_used: float | None


class CasePaths:
    def __init__(self, views, definitions):
        self._views = views
        self._definitions = definitions

    def path(self, case_id: int, *, scope: Principal) -> CasePath:
        with self._views() as session:
            row = session.execute(sa.select(Case.id, Case.definition_id, Case.process_key, Case.state)
                                  .where(Case.id == case_id, scopes.case_scope(scope))).first()
            timers = [] if row is None else session.execute(
                sa.select(Timer.element_id, Timer.due_at).where(Timer.case_id == case_id, Timer.state == "pending")
                .order_by(Timer.due_at)).all()
        if row is None:
            raise NotFound(f"no case {case_id}")
        state = json.loads(row.state)
        elements = self._definitions.load(row.definition_id).elements
        done, active, waiting = [], [], []
        tasks = sorted(_all_tasks(state), key=lambda t: t.get("last_state_change") or 0)
        for task in tasks:
            spec = elements.get(task["task_spec"])
            element = getattr(spec, "bpmn_id", None)
            if not element:
                continue
            if task["state"] == TaskState.COMPLETED and element not in done:
                done.append(element)
            elif task["state"] in (TaskState.READY, TaskState.STARTED) and element not in active:
                active.append(element)
            elif task["state"] == TaskState.WAITING and getattr(spec, "event_definition", None) is not None:
                waiting.append({"element_id": element, "due_at": None})
        dues = {element: due for element, due in timers}
        waiting = [{**w, "due_at": dues[w["element_id"]].isoformat() if w["element_id"] in dues else None}
                   for w in waiting]
        return CasePath(row.id, row.definition_id, row.process_key, self._diagram(row.definition_id, row.process_key),
                        done, active, waiting)

    def _diagram(self, definition_id: int, process_key: str) -> str:
        files = self._definitions.files(definition_id)
        for text in files.values():
            if f'id="{process_key}"' in text:
                return text
        return next(iter(files.values()))

    def deadlines(self, task_ids: list[int], now: datetime, *, scope: Principal) -> dict[int, Deadline]:
        """The colour of each task against its case's earliest pending timer (its deadline): red when
        overdue, yellow past 70% of the time, else green."""
        if not task_ids:
            return {}
        with self._views() as session:
            rows = session.execute(
                sa.select(HumanTask.id, HumanTask.state, HumanTask.unit, Timer.created_at, Timer.due_at)
                .join(Case, Case.id == HumanTask.case_id)
                .outerjoin(Timer, sa.and_(Timer.case_id == HumanTask.case_id, Timer.state == "pending"))
                .where(HumanTask.id.in_(task_ids), scopes.case_scope(scope))
                .order_by(HumanTask.id, Timer.due_at)).all()
        found: dict[int, Deadline] = {}
        for task_id, state, _unit, started, due in rows:
            if task_id in found:
                continue
            if state == "overdue":
                found[task_id] = Deadline(task_id, "red", due, None)
            elif due is None:
                found[task_id] = Deadline(task_id, "none", None, None)
            else:
                span = (due - started).total_seconds()
                share = (now - started).total_seconds() / span if span > 0 else 1.0
                colour = "red" if now > due else "yellow" if share >= YELLOW_SHARE else "green"
                found[task_id] = Deadline(task_id, colour, due, share)
        return found


def _all_tasks(state: dict):
    yield from state.get("tasks", {}).values()
    for sub in (state.get("subprocesses") or {}).values():
        yield from sub.get("tasks", {}).values()
