"""The read side: open tasks, a case as it stands, its history. No command runs here."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from rules.task_lifecycle import OPEN_STATES

from engine.access import scopes
from engine.access.scopes import Principal
from engine.errors import NotFound
from engine.cases.history import EventFields
from engine.execution.spiff import event_definitions
from engine.store.models import Case, Definition, HistoryEvent, HumanTask, Timer


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


@dataclass(frozen=True)
class CaseSummary:
    """A case in a search result: its columns, without its data (no state is read, no personal data)."""

    id: int
    process_key: str
    definition_version: int
    status: str
    level: str | None
    grid_code: str | None
    unit: str | None
    title: str
    category: str | None
    sub_category: str | None
    urgency: str | None
    supervision: str | None
    overdue: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Page:
    """One page of a list and the count of all rows that matched, both under the same scope."""

    items: list
    total: int
    page: int
    per_page: int


MAX_PER_PAGE = 200

_EVENT_FIELDS = [f.name for f in fields(EventView)]


def _overdue():
    """Past its deadline: the matter's status says so, or one of its open tasks went overdue (a task that
    signed late keeps the matter in_progress but stays overdue)."""
    late_task = sa.exists().where(HumanTask.case_id == Case.id, HumanTask.state == "overdue")
    return sa.or_(Case.status == "overdue", late_task)


def _scoped(query, scope: Principal | None, clause_of):
    return query if scope is None else query.where(clause_of(scope))


def _page_bounds(page: int, per_page: int) -> tuple[int, int]:
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"page starts at 1 and per_page is 1 to {MAX_PER_PAGE}")
    return (page - 1) * per_page, per_page


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

    def task(self, task_id: int, *, scope: Principal | None = None) -> TaskView:
        """`scope`: only a task of a case the principal may see; any other is not found."""
        with self._sessions() as session:
            row = session.get(HumanTask, task_id)
            if row is None or (scope is not None and not self._visible(session, row.case_id, scope)):
                raise NotFound(f"no task {task_id}")
            return _task_view(row)

    @staticmethod
    def _visible(session, case_id: int, scope: Principal) -> bool:
        return session.scalar(sa.select(Case.id).where(Case.id == case_id, scopes.case_scope(scope))) is not None

    def task_page(self, scope: Principal, *, case_id: int | None = None, open_only: bool = True,
                  role: str | None = None, unit: str | None = None, grid_code: str | None = None,
                  agency_level: str | None = None, page: int = 1, per_page: int = 50) -> Page:
        """The principal's tasks ("my tasks": their lane and their grid, unit or level; everything for
        the auditor and the platform), narrowed by the filters, a page at a time with the total."""
        offset, limit = _page_bounds(page, per_page)
        where = [scopes.task_scope(scope)]
        for column, value in ((HumanTask.case_id, case_id), (HumanTask.role, role), (HumanTask.unit, unit),
                              (HumanTask.grid_code, grid_code), (HumanTask.agency_level, agency_level)):
            if value is not None:
                where.append(column == value)
        if open_only:
            where.append(HumanTask.state.in_(sorted(OPEN_STATES)))
        with self._sessions() as session:
            # The page and the total in one round trip; only a page past the end needs a count of its own.
            found = session.execute(sa.select(HumanTask, sa.func.count().over().label("total")).where(*where)
                                    .order_by(HumanTask.id).limit(limit).offset(offset)).all()
            total = found[0].total if found else session.scalar(
                sa.select(sa.func.count()).select_from(HumanTask).where(*where))
            return Page([_task_view(r.HumanTask) for r in found], total, page, per_page)

    def search_cases(self, scope: Principal | None = None, *, status: str | None = None,
                     grid_code: str | None = None, unit: str | None = None, category: str | None = None,
                     overdue: bool | None = None, created_from: datetime | None = None,
                     created_to: datetime | None = None, within=None, page: int = 1, per_page: int = 50) -> Page:
        """Cases matching every filter given, newest first; `created_to` is exclusive. `within`: a subquery
        of case ids the result is narrowed to (the cases behind a statistics figure)."""
        offset, limit = _page_bounds(page, per_page)
        where = [] if scope is None else [scopes.case_scope(scope)]
        if within is not None:
            where.append(Case.id.in_(within))
        for column, value in ((Case.status, status), (Case.grid_code, grid_code), (Case.unit, unit),
                              (Case.category, category)):
            if value is not None:
                where.append(column == value)
        if overdue is not None:
            where.append(_overdue() if overdue else sa.not_(_overdue()))
        if created_from is not None:
            where.append(Case.created_at >= created_from)
        if created_to is not None:
            where.append(Case.created_at < created_to)
        columns = (Case.id, Case.process_key, Definition.version, Case.status, Case.level, Case.grid_code,
                   Case.unit, Case.title, Case.category, Case.sub_category, Case.urgency, Case.supervision,
                   _overdue().label("overdue"), Case.created_at, Case.updated_at, Case.finished_at)
        with self._sessions() as session:
            total = session.scalar(sa.select(sa.func.count()).select_from(Case).where(*where))
            rows = session.execute(sa.select(*columns).join(Definition, Definition.id == Case.definition_id)
                                   .where(*where).order_by(Case.id.desc()).limit(limit).offset(offset)) \
                if total > offset else []
            return Page([CaseSummary(*row) for row in rows], total, page, per_page)

    def case(self, case_id: int, *, scope: Principal | None = None) -> CaseView:
        """`scope`: only a case the principal may see; any other is not found."""
        with self._sessions() as session:
            # The case, its definition's version, its open tasks and the scope check in one round trip.
            open_task = sa.and_(HumanTask.case_id == Case.id, HumanTask.state.in_(sorted(OPEN_STATES)))
            query = sa.select(Case, Definition.version, HumanTask) \
                .join(Definition, Definition.id == Case.definition_id) \
                .outerjoin(HumanTask, open_task).where(Case.id == case_id).order_by(HumanTask.id)
            found = session.execute(query if scope is None else query.where(scopes.case_scope(scope))).all()
            if not found:
                raise NotFound(f"no case {case_id}")
            row, version = found[0][0], found[0][1]
            tasks = [task for _, _, task in found if task is not None]
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

    def ping(self) -> bool:
        """Whether the database answers (the health endpoint)."""
        try:
            with self._sessions() as session:
                session.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def operational_counts(self, now: datetime) -> dict:
        """What the monitoring shows: unfinished and overdue cases, pending timers, and how far the
        oldest due timer is behind (the timer service's lag; 0 when nothing is due)."""
        with self._sessions() as session:
            open_cases = session.scalar(sa.select(sa.func.count()).select_from(Case)
                                        .where(Case.finished_at.is_(None)))
            overdue = session.scalar(sa.select(sa.func.count()).select_from(Case)
                                     .where(Case.finished_at.is_(None), _overdue()))
            pending, oldest = session.execute(sa.select(sa.func.count(), sa.func.min(Timer.due_at))
                                              .where(Timer.state == "pending")).one()
        if isinstance(oldest, datetime) and oldest.tzinfo is None:  # aggregates skip the column's type on SQLite
            oldest = oldest.replace(tzinfo=timezone.utc)
        elif isinstance(oldest, str):
            oldest = datetime.fromisoformat(oldest).replace(tzinfo=timezone.utc)
        lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        return {"open_cases": open_cases, "overdue_cases": overdue, "pending_timers": pending,
                "timer_lag_seconds": lag}

    def history(self, case_id: int, *, scope: Principal | None = None) -> list[EventView]:
        with self._sessions() as session:
            if session.get(Case, case_id) is None or (scope is not None
                                                      and not self._visible(session, case_id, scope)):
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
