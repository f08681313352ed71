"""The read side: open tasks, a case as it stands, its history. No command runs here."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from rules.task_lifecycle import OPEN_STATES

from .errors import NotFound
from .history import EventFields
from .spiff import event_definitions
from .models import Case, Definition, HistoryEvent, HumanTask


@dataclass(frozen=True)
class TaskView:
    id: int
    case_id: int
    element_id: str
    name: str
    role: str
    grid_code: str | None
    unit: str | None
    agency_level: str | None
    state: str
    created_at: datetime
    updated_at: datetime
    actor: str | None
    return_reason: str | None


@dataclass(frozen=True)
class EventView(EventFields):
    """A recorded history event: what was hashed, and its hash."""

    event_hash: str


@dataclass(frozen=True)
class Waiting:
    """An event the case waits for: a message from outside, or a timer with its due time."""

    element_id: str
    name: str
    kind: str  # "message", "timer" or "event"
    due_at: datetime | None


@dataclass(frozen=True)
class CaseView:
    id: int
    process_key: str
    definition_version: int
    definition_id: int
    status: str
    level: str | None
    grid_code: str | None
    unit: str | None
    title: str
    category: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    data: dict
    open_tasks: list[TaskView]
    waiting: list[Waiting]


_EVENT_FIELDS = [f.name for f in fields(EventView)]


def _task_view(row: HumanTask) -> TaskView:
    return TaskView(row.id, row.case_id, row.element_id, row.name, row.role, row.grid_code, row.unit,
                    row.agency_level, row.state, row.created_at, row.updated_at, row.actor, row.return_reason)


class CaseQueries:
    def __init__(self, sessions, definitions):
        self._sessions = sessions
        self._definitions = definitions

    def tasks(self, *, role: str | None = None, unit: str | None = None, grid_code: str | None = None,
              agency_level: str | None = None, case_id: int | None = None, open_only: bool = True,
              limit: int = 100, offset: int = 0) -> list[TaskView]:
        query = sa.select(HumanTask).order_by(HumanTask.id).limit(limit).offset(offset)
        for column, value in ((HumanTask.role, role), (HumanTask.unit, unit), (HumanTask.grid_code, grid_code),
                              (HumanTask.agency_level, agency_level), (HumanTask.case_id, case_id)):
            if value is not None:
                query = query.where(column == value)
        if open_only:
            query = query.where(HumanTask.state.in_(sorted(OPEN_STATES)))
        with self._sessions() as session:
            return [_task_view(row) for row in session.scalars(query)]

    def task(self, task_id: int) -> TaskView:
        with self._sessions() as session:
            row = session.get(HumanTask, task_id)
            if row is None:
                raise NotFound(f"no task {task_id}")
            return _task_view(row)

    def case(self, case_id: int) -> CaseView:
        with self._sessions() as session:
            row = session.get(Case, case_id)
            if row is None:
                raise NotFound(f"no case {case_id}")
            version = session.scalar(sa.select(Definition.version).where(Definition.id == row.definition_id))
            tasks = session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case_id,
                                                               HumanTask.state.in_(sorted(OPEN_STATES)))
                                    .order_by(HumanTask.id))
            state = json.loads(row.state)
            return CaseView(row.id, row.process_key, version, row.definition_id, row.status, row.level,
                            row.grid_code, row.unit, row.title, row.category, row.created_at, row.updated_at,
                            row.finished_at, _case_data(state), [_task_view(t) for t in tasks],
                            self._waiting(row.definition_id, state))

    def _waiting(self, definition_id: int, state: dict) -> list[Waiting]:
        elements = self._definitions.load(definition_id).elements
        found = []
        for task in state.get("tasks", {}).values():
            if task["state"] != TaskState.WAITING:
                continue
            spec = elements.get(task["task_spec"])
            if getattr(spec, "event_definition", None) is None:
                continue
            for definition in event_definitions(spec.event_definition):
                kind = "timer" if isinstance(definition, TimerEventDefinition) else \
                    "message" if isinstance(definition, MessageEventDefinition) else "event"
                due = task["internal_data"].get("event_value") if kind == "timer" else None
                name = definition.name or spec.bpmn_name or spec.bpmn_id
                found.append(Waiting(spec.bpmn_id, name, kind,
                                     TimerEventDefinition.get_datetime(due) if isinstance(due, str) else None))
        return found

    def cases(self, *, status: str | None = None, limit: int = 100, offset: int = 0) -> list[CaseView]:
        query = sa.select(Case.id).order_by(Case.id).limit(limit).offset(offset)
        if status:
            query = query.where(Case.status == status)
        with self._sessions() as session:
            ids = list(session.scalars(query))
        return [self.case(i) for i in ids]

    def history(self, case_id: int) -> list[EventView]:
        with self._sessions() as session:
            if session.get(Case, case_id) is None:
                raise NotFound(f"no case {case_id}")
            rows = session.scalars(sa.select(HistoryEvent).where(HistoryEvent.case_id == case_id)
                                   .order_by(HistoryEvent.seq))
            return [EventView(**{f: getattr(r, f) for f in _EVENT_FIELDS}) for r in rows]


def _case_data(dct: dict) -> dict:
    """The data of the case as it stands: the data its latest task saw."""
    last = dct.get("last_task")
    tasks = dct.get("tasks", {})
    if last in tasks:
        return _materialize(tasks, last)
    return dict(dct.get("data") or {})


def _materialize(tasks: dict, task_id: str) -> dict:
    # SpiffWorkflow stores each task's data as a delta on its parent's: replay the deltas from the root.
    chain = []
    while task_id is not None:
        chain.append(tasks[task_id])
        task_id = tasks[task_id].get("parent")
    data: dict = {}
    for task in reversed(chain):
        delta = task.get("delta") or {}
        if not delta:
            data = dict(task.get("data") or {})
            continue
        data.update(delta.get("updates", {}))
        for key in delta.get("deletions", []):
            data.pop(key, None)
    return data
