"""Audit replay: re-execute a case's recorded commands and check every step reproduces its state hash.

A replay runs the same command code as `CaseService`, on rows kept in memory: `_ReplayCases` supplies the
loading and committing (no database), and per step a clock standing at the recorded time and the calendar,
time-limit and routing versions the recorded command used. The case's events are read once and its
definition's spec comes from the per-process cache, so a replay costs about what the commands cost in
memory. Task ids in payloads are database ids: a task the replay creates takes the id of the recorded task
created in the same place (a case's task rows in id order are its tasks in creation order).

Whatever goes wrong is a reported result, never an exception: a step whose outcome differs is a divergence
(shown beside what was recorded), an unknown command or a refused one is a divergence, and a rule version
that is not available makes the case "cannot replay", never replayed with another version.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from engine.cases.commands import CaseService, _Run
from engine.clock import FixedClock
from engine.errors import EngineError, InvalidCommand, NotFound
from engine.execution.functions import Deadlines, script_engine
from engine.migration.commands import replay_migrated, replay_reverted
from engine.store.models import HistoryEvent, HumanTask
from engine.audit.rule_tables import NAMES

# The recorded command → how to issue it again. Adding a command to the engine is one line here.
COMMANDS: dict[str, Callable] = {
    "start": lambda s, e, p, c: s.start(p["key"], p["data"], actor=e.actor, role=e.role, version=p["version"],
                                        clock=c),
    "complete": lambda s, e, p, c: s.complete_task(p["task_id"], p["data"], actor=e.actor, role=e.role, clock=c),
    "sign_for": lambda s, e, p, c: s.sign_for(p["task_id"], actor=e.actor, role=e.role, clock=c),
    "return": lambda s, e, p, c: s.return_task(p["task_id"], p["reason"], actor=e.actor, role=e.role, clock=c),
    "refuse": lambda s, e, p, c: s.refuse_task(p["task_id"], p["reason"], actor=e.actor, role=e.role, clock=c),
    "message": lambda s, e, p, c: s.send_message(e.case_id, p["name"], p["payload"], actor=e.actor, role=e.role,
                                                 clock=c),
    "request_extension": lambda s, e, p, c: s.request_extension(p["task_id"], p["days"], p["reason"], actor=e.actor,
                                                                role=e.role, clock=c),
    "decide_extension": lambda s, e, p, c: s.decide_extension(p["task_id"], p["approve"], comment=p.get("comment", ""),
                                                              actor=e.actor, role=e.role, clock=c),
    "remind": lambda s, e, p, c: s.remind(p["task_id"], p.get("note", ""), actor=e.actor, role=e.role, clock=c),
    "supervise": lambda s, e, p, c: s.supervise(e.case_id, p["card"], p["level"], p.get("note", ""), actor=e.actor,
                                                role=e.role, clock=c),
    "timers": lambda s, e, p, c: s.check_timers(e.case_id, actor=e.actor, clock=c),
    "migrated": replay_migrated,
    "migration_reverted": replay_reverted,
}
# Commands that move a case to another definition version: their event names the version moved to.
MOVES = frozenset({"migrated", "migration_reverted"})

# What a replay reads of an event (the hashed fields, the hash, and the wall time it was written).
EVENT_COLUMNS = (HistoryEvent.case_id, HistoryEvent.seq, HistoryEvent.command, HistoryEvent.actor,
                 HistoryEvent.role, HistoryEvent.payload, HistoryEvent.clock_time, HistoryEvent.definition_id,
                 HistoryEvent.status_before, HistoryEvent.status_after, HistoryEvent.effects,
                 HistoryEvent.state_hash, HistoryEvent.prev_hash, HistoryEvent.event_hash, HistoryEvent.recorded_at)
VERSION_KEYS = ("calendar", "time_limits", "routing")


class CannotReplay(EngineError):
    code = "cannot_replay"


@dataclass(frozen=True)
class Divergence:
    case_id: int
    seq: int
    command: str
    reason: str
    recorded: dict = field(default_factory=dict)
    replayed: dict = field(default_factory=dict)


@dataclass
class ReplayResult:
    case_id: int
    steps: int = 0                       # steps that reproduced their recorded outcome
    events: int = 0
    divergence: Divergence | None = None
    cannot: str | None = None            # "cannot replay: …" — a recorded rule version is not available
    state: "CaseState | None" = None     # the case as the last replayed step left it

    @property
    def equal(self) -> bool:
        return self.divergence is None and self.cannot is None


@dataclass(frozen=True)
class CaseState:
    """A case as a replay left it: the rows it would have had, and its workflow instance."""

    run: _Run
    at: datetime | None   # clock time of the last step applied


class _PinnedDeadlines(Deadlines):
    """Deadlines of one recorded step: the calendar, time-limit and routing versions the step named, or the
    ones in force when it was recorded if it named none (a replay that then consults them diverges)."""

    def __init__(self, versions: "RuleVersions", event):
        super().__init__(None)
        self._versions, self._event = versions, event
        self.missing: str | None = None

    def _pinned(self, kind: str):
        recorded = (self._event.effects or {}).get(kind)
        return recorded if recorded is not None else self._versions.in_force(kind, self._event.recorded_at)

    def calendar(self):
        if self._calendar is None:
            version = self._pinned("calendar")
            try:
                self._calendar = self._versions.calendars.get(int(version))
            except (LookupError, ValueError, TypeError):
                self.missing = f"cannot replay: calendar version {version} is not in the database"
                raise CannotReplay(self.missing) from None
            self.calendar_version = int(version)
        return self._calendar

    def _table(self, kind: str):
        version = self._pinned(kind)
        table = self._versions.tables.get(kind, str(version))
        if table is None:
            self.missing = (f"cannot replay: the {NAMES[kind]} version {version} the case used is neither shipped "
                            "nor stored in the database")
            raise CannotReplay(self.missing)
        return table

    def time_limit_table(self):
        return self._table("time_limits")

    def routing_table(self):
        return self._table("routing")


class RuleVersions:
    """Where a replay finds the versions a step used: calendars in their table, rule tables in theirs."""

    def __init__(self, calendars, tables):
        self.calendars, self.tables = calendars, tables
        self._calendar_rows: list[tuple[int, datetime]] | None = None

    def in_force(self, kind: str, at: datetime):
        if kind != "calendar":
            return self.tables.in_force(kind, at)
        if self._calendar_rows is None:
            self._calendar_rows = [(v.id, v.created_at) for v in self.calendars.versions()]
        found = [vid for vid, created in self._calendar_rows if created <= at]
        return found[-1] if found else (self._calendar_rows[0][0] if self._calendar_rows else None)


class _PinnedDefinition:
    """The definition store a replay sees: the version the case is pinned to; another version only for a
    recorded migration (`store`)."""

    def __init__(self, loaded, store=None):
        self.loaded = loaded
        self._store = store

    def find(self, key, version=None, session=None):
        info = self.loaded.info
        if key != info.key or (version is not None and version != info.version):
            raise InvalidCommand(f"the recorded start names {key} version {version}, but the case is pinned to "
                                 f"{info.key} version {info.version}")
        return info

    def load(self, definition_id):
        if self._store is None or definition_id == self.loaded.info.id:
            return self.loaded
        return self._store.load(definition_id)


class _RecordedMatterLists:
    """County matter-list decisions (条例 §13) depend on the list in force at the time; a replay takes them as
    the recorded command made them: a recorded assignment passed the check, a refusal cites what it cited."""

    def __init__(self, replay: "_ReplayCases"):
        self._replay = replay

    def check_application(self, session, data, now):
        return None

    def check_assignment(self, session, run, row):
        return None

    def refusal_grounds(self, session, run):
        return (self._replay.event.effects or {}).get("refusal")

    def adopt(self, session, case, data, now):
        return (self._replay.event.effects or {}).get("matter_list")


class _Unit:
    """The session a replayed command is given: the rows it adds live on its run, in memory, so adding
    them is all there is to do (an ORM session would only track them at a cost)."""

    def add(self, row) -> None:
        pass


class _ReplayCases(CaseService):
    """`CaseService` with its loading and committing done in memory, one case at a time."""

    def __init__(self, loaded, versions: RuleVersions, case_id: int, task_ids: list[int], definitions=None):
        super().__init__(None, _PinnedDefinition(loaded, definitions), None)
        self._matter_lists = _RecordedMatterLists(self)
        self.versions, self.case_id = versions, case_id
        self.unit = _Unit()
        self.task_ids = list(task_ids)
        self.created = 0
        self.run: _Run | None = None
        self.event = None
        self.committed: tuple | None = None

    @contextmanager
    def transaction(self):
        yield self.unit

    def _script_engine(self, clock):
        return script_engine(clock, deadlines=_PinnedDeadlines(self.versions, self.event))

    def _task_rows(self, session, task_id):
        if self.run is None or not any(t.id == task_id for t in self.run.tasks):
            raise NotFound(f"no task {task_id} in the replayed case")
        return self.run.tasks

    def _load(self, session, case_id, clock, tasks=None):
        if self.run is None or case_id not in (None, self.case_id):
            raise NotFound(f"no case {case_id} in the replay")
        workflow = self.run.workflow
        workflow.script_engine = self._script_engine(clock)
        return _Run(self.run.case, self.run.loaded, workflow, clock, self.run.tasks)

    def _commit(self, session, run, command, actor, role, payload, status_before):
        self._conclude(run)
        if run.case.id is None:
            run.case.id = self.case_id
        for row in run.tasks:
            if row.id is None:  # the id of the recorded task created in the same place; none: a task never recorded
                row.id = self.task_ids[self.created] if self.created < len(self.task_ids) else -(self.created + 1)
                self.created += 1
        self.run = run
        self.committed = (command, status_before)


def _recorded_tasks(events) -> list[list[str]]:
    """The case's tasks as the recorded events left them: [element, state] in creation order."""
    tasks: list[list[str]] = []
    by_id: dict[str, list[str]] = {}
    for event in events:
        for spiff_id, element, before, after in (event.effects or {}).get("tasks", []):
            if before is None or spiff_id not in by_id:
                by_id[spiff_id] = [element, after]
                tasks.append(by_id[spiff_id])
            else:
                by_id[spiff_id][1] = after
    return tasks


def _sides(event, recorded_tasks, run: _Run | None, committed: bool) -> tuple[dict, dict]:
    effects = event.effects or {}
    recorded = {"status": event.status_after,
                "status moves": [m[:2] for m in effects.get("status", [])],
                "task moves": [[m[1], m[2], m[3]] for m in effects.get("tasks", [])],
                "tasks": recorded_tasks,
                "rule versions": {k: effects[k] for k in VERSION_KEYS if k in effects},
                "state hash": event.state_hash}
    if run is None:
        return recorded, {}
    replayed = {"status": run.case.status,
                "status moves": [m[:2] for m in run.status_moves] if committed else [],
                "task moves": [[r.element_id, b, a] for r, b, a in run.task_moves] if committed else [],
                "tasks": [[t.element_id, t.state] for t in run.tasks],
                "rule versions": run.workflow.script_engine.deadlines.used(),
                "state hash": run.case.state_hash if committed else None}
    return recorded, replayed


def replay_events(case_id: int, events: Iterable, task_ids: list[int], definitions, versions: RuleVersions,
                  *, until: datetime | None = None) -> ReplayResult:
    """Replay one case from its events (seq order). With `until`, stop before the first event after it."""
    result = ReplayResult(case_id)
    service: _ReplayCases | None = None
    seen = []
    last_at = None
    for event in events:
        if until is not None and event.clock_time > until:
            break
        result.events += 1
        seen.append(event)

        def diverged(reason, run=None, committed=False):
            recorded, replayed = _sides(event, _recorded_tasks(seen), run, committed)
            result.divergence = Divergence(case_id, event.seq, event.command, reason, recorded, replayed)
            return result

        if service is None:
            if event.command != "start":
                return diverged("the history does not begin with the start of the case")
            try:
                loaded = definitions.load(event.definition_id)
            except EngineError as exc:
                result.cannot = f"cannot replay: definition {event.definition_id}: {exc}"
                return result
            service = _ReplayCases(loaded, versions, case_id, task_ids, definitions)
        elif event.definition_id != service.run.case.definition_id and event.command not in MOVES:
            return diverged(f"the event names definition {event.definition_id}; the case is pinned to "
                            f"{service.run.case.definition_id}")
        action = COMMANDS.get(event.command)
        if action is None:
            return diverged(f"unknown command {event.command!r}: the replay has no rule for it", service.run)
        service.event, service.committed = event, None
        try:
            action(service, event, event.payload or {}, FixedClock(event.clock_time))
        except CannotReplay as exc:
            result.cannot = str(exc)
            return result
        except EngineError as exc:
            missing = _missing(service)
            if missing:
                result.cannot = missing
                return result
            return diverged(f"the replayed command was refused: {exc}", service.run)
        except (KeyError, TypeError, ValueError) as exc:
            return diverged(f"the recorded payload cannot be replayed ({type(exc).__name__}: {exc})", service.run)
        run = service.run
        if service.committed is None:
            return diverged("the replayed command changed nothing (a timer firing found nothing due)", run)
        problems = _compare(event, run, service.committed[1])
        if problems:
            return diverged("; ".join(problems), run, committed=True)
        result.steps += 1
        last_at = event.clock_time
    result.state = CaseState(service.run, last_at) if service is not None and service.run is not None else None
    return result


def _missing(service: _ReplayCases) -> str | None:
    if service.run is None:
        return None
    deadlines = getattr(service.run.workflow.script_engine, "deadlines", None)
    return getattr(deadlines, "missing", None)


def _compare(event, run: _Run, status_before) -> list[str]:
    problems = []
    if run.case.definition_id != event.definition_id:
        problems.append(f"the case is on definition {run.case.definition_id}, the event names {event.definition_id}")
    if run.case.state_hash != event.state_hash:
        problems.append("the state hash differs")
    if run.case.status != event.status_after or status_before != event.status_before:
        problems.append(f"status {status_before} → {run.case.status}, recorded {event.status_before} → "
                        f"{event.status_after}")
    effects = event.effects or {}
    if [m[:2] for m in run.status_moves] != [m[:2] for m in effects.get("status", [])]:
        problems.append("the status moves differ")
    if [[r.element_id, b, a] for r, b, a in run.task_moves] != [m[1:] for m in effects.get("tasks", [])]:
        problems.append("the task moves differ")
    used = run.workflow.script_engine.deadlines.used()
    recorded = {k: effects[k] for k in VERSION_KEYS if k in effects}
    if used != recorded:
        problems.append(f"rule versions used {used}, recorded {recorded}")
    return problems


class Replayer:
    """Replays stored cases: one, or all of them (in worker processes), with progress."""

    def __init__(self, readers, definitions, calendars, rule_tables):
        self._readers = readers
        self._definitions = definitions
        self.versions = RuleVersions(calendars, rule_tables)

    def load(self, session, case_ids: list[int]) -> tuple[dict[int, list], dict[int, list[int]]]:
        """Events and task ids of these cases, two queries."""
        events: dict[int, list] = {cid: [] for cid in case_ids}
        for row in session.execute(sa.select(*EVENT_COLUMNS).where(HistoryEvent.case_id.in_(case_ids))
                                   .order_by(HistoryEvent.case_id, HistoryEvent.seq)):
            events[row.case_id].append(row)
        tasks: dict[int, list[int]] = {cid: [] for cid in case_ids}
        for case_id, task_id in session.execute(sa.select(HumanTask.case_id, HumanTask.id)
                                                .where(HumanTask.case_id.in_(case_ids)).order_by(HumanTask.id)):
            tasks[case_id].append(task_id)
        return events, tasks

    def case(self, case_id: int, *, until: datetime | None = None) -> ReplayResult:
        with self._readers() as session:
            events, tasks = self.load(session, [case_id])
        if not events[case_id]:
            raise NotFound(f"no case {case_id} with a recorded history")
        return replay_events(case_id, events[case_id], tasks[case_id], self._definitions, self.versions,
                             until=until)

    def cases(self, case_ids: list[int]) -> list[ReplayResult]:
        with self._readers() as session:
            events, tasks = self.load(session, case_ids)
        return [replay_events(cid, events[cid], tasks[cid], self._definitions, self.versions) for cid in case_ids
                if events[cid]]
