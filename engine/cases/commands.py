"""Commands on cases. Each one loads the case, applies itself, runs engine steps, and commits the new
state, its human tasks and its history event in one transaction: all of it or none of it.

Longer than most modules on purpose: every command shares one load / run / sync / commit path (`_Run`), and
replay re-runs them through that same code, so the path and its commands are read together here."""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition as BpmnMessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import object_session
from sqlalchemy.orm.exc import StaleDataError

from rules import task_lifecycle as lifecycle
from rules.calendar import UnknownYear
from rules.catalog import shipped_catalog
from rules.levels import LEVELS
from rules.negative_list import OnNegativeList, check_admissible
from rules.time_limits import UnknownSubCategory

from engine.cases import history
from engine.cases.intake import MAX_ASSISTING_UNITS, RegistryChecks
from engine.delivery import outbox
from engine.deadlines import timers
from engine.definitions.status_paths import properties, role_of
from engine.clock import SYSTEM_CLOCK, Clock
from engine.store.db import utcnow
from engine.definitions.store import DefinitionStore, LoadedDefinition
from engine.errors import Conflict, InvalidCommand, NotFound, TaskClosed, unknown_year
from engine.execution.expressions import ExpressionError
from engine.definitions.forms import check_data, parse_form
from engine.execution.functions import script_engine
from engine.store.models import Case, HistoryEvent, HumanTask
from engine.execution.spiff import SERIALIZER, event_definitions

MAX_PAYLOAD_KEYS = 200
KEPT_WHEN_OMITTED = frozenset({"sub_category"})
# A suspended deadline waits this far ahead (the timer index keeps it pending, not due: inside the bound
# on timer values) until resumed.
SUSPENDED_FOR = timedelta(days=9 * 365)
AFTER_DISPATCH = frozenset({"dispatched", "in_progress", "returned", "overdue", "feedback_submitted", "verifying",
                            "rework", "suspended", "reopened"})
DUPLICATE_FROM = ("reported", "registered", "self_handling", "escalated")
DONE_FOR_DUPLICATES = ("closed", "evaluated", "cancelled", "not_filed", "self_resolved")
# Engine steps (elements completed) one command may run. A loop the deploy check could not see through keeps
# SpiffWorkflow busy and, past ~1000 steps, makes it stop silently with the case looking finished; a
# command that gets this far is refused with nothing committed. Ordinary commands run tens of steps.
MAX_STEPS_PER_COMMAND = 400
MAX_EXTENSION_DAYS = 10  # domain.md §4: an extension is at most 10 working days
SUPERVISION_CARDS = ("normal", "yellow", "red")


@dataclass
class _Run:
    """What one command did, collected while it runs and written with it."""

    case: Case
    loaded: LoadedDefinition
    workflow: BpmnWorkflow
    clock: Clock
    tasks: list[HumanTask]
    status_moves: list = field(default_factory=list)
    task_moves: list = field(default_factory=list)
    role: str | None = None       # the role the command acts in: who would be assigning a new task
    notes: dict = field(default_factory=dict)   # further effects for the history event (rule versions used)
    steps: int = 0

    def reach(self, spiff_task) -> None:
        """An element was reached: a declared status applies now; a deadline on a task makes it overdue."""
        self.steps += 1
        if self.steps > MAX_STEPS_PER_COMMAND:
            raise InvalidCommand(f"case {self.case.id or '(new)'}: more than {MAX_STEPS_PER_COMMAND} engine steps in "
                                 f"one command (last at {spiff_task.task_spec.bpmn_id or spiff_task.task_spec.name}); "
                                 "the definition loops without a bound — nothing was applied (流程存在无上限循环，"
                                 "本次操作未生效)")
        if _is_timer_on_task(spiff_task):
            host = _host_of(spiff_task)
            row = next((t for t in self.tasks if host is not None and t.spiff_task_id == str(host.id)), None)
            if row is not None and row.state in ("offered", "signed_for", "in_progress", "extension_requested"):
                self.move_task(row, "become_overdue")
        target = properties(spiff_task.task_spec).get("status")
        if target:
            self.move_status(target, spiff_task.task_spec.bpmn_id, spiff_task.data)

    def move_status(self, target: str, element: str, data: dict) -> None:
        current = self.case.status
        if current == target:
            return
        statuses = self.loaded.lifecycle
        try:
            trigger = statuses.move(current, target)
        except statuses.UnlawfulMove as exc:
            raise InvalidCommand(f"{exc} (at {element})") from None
        if target in statuses.REASON_REQUIRED and not str(data.get("reason") or "").strip():
            raise InvalidCommand(f"moving the case to {target} at {element} needs a reason")
        if target == "registered" and statuses.NAME == "grid_matter":
            self.classify(data.get("sub_category"), element)
        self.status_moves.append([current, target, trigger, element])
        self.case.status = target

    def classify(self, kind, element: str) -> None:
        """A grid matter is classified by the time it is registered (核实登记 may set or correct the
        sub-category); the §14 negative list and the §13 catalog are checked on the kind it ends up with."""
        if kind is None or not str(kind).strip():
            raise InvalidCommand(f"a matter is registered with its sub-category (at {element}): give sub_category "
                                 "when reporting or verifying it",
                                 zh=f"事项登记时须确定事项小类（{element}）：请在上报或核实时填写 sub_category")
        _check_intake({"sub_category": kind})
        self.case.sub_category = str(kind)

    def move_task(self, row: HumanTask, action: str, **rules) -> None:
        before = row.state
        row.state = lifecycle.apply(before, action, **rules)
        row.updated_at = self.clock.now()
        self.task_moves.append((row, before, row.state))


class _Instances:
    """Workflow instances as the last command in this process committed them, by case and revision.

    Deserializing the stored state is a large share of a command; the next command on a case usually finds
    the instance here instead. An entry serves only the exact revision it was committed as (any other
    process's change moves the revision on), and a command takes it out while it works on it, so a command
    that fails leaves nothing half-changed behind."""

    def __init__(self, size: int = 256):
        self._size = size
        self._entries: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, case_id: int, revision: int) -> BpmnWorkflow | None:
        with self._lock:
            entry = self._entries.pop(case_id, None)
        return entry[1] if entry is not None and entry[0] == revision else None

    def put(self, case: Case, workflow: BpmnWorkflow) -> None:
        with self._lock:
            self._entries[case.id] = (case.revision, workflow)
            self._entries.move_to_end(case.id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class CaseService:
    def __init__(self, sessions, definitions: DefinitionStore, calendars=None, matter_lists=None):
        self._sessions = sessions
        self._definitions = definitions
        self._calendars = calendars
        # The county matter lists (engine/matter_lists.py): checked when a task goes to a grid worker, and
        # written when a list change is filed. Without it (a bare CaseService) neither happens.
        self._matter_lists = matter_lists
        self._instances = _Instances()
        # Read models kept in the command's transaction (the statistics facts): each is called as
        # `project(session, run, event_fields)` after the history event is written, and sees what it did.
        self.projections: list = []
        # Intake and dispatch checked against the registry (grids in force, registered units); None in the
        # audit replay, where the recorded command passed them.
        self._registry = RegistryChecks()

    # -- commands -----------------------------------------------------------------------------------

    def start(self, key: str, data: dict, *, actor: str, role: str, version: int | None = None,
              clock: Clock = SYSTEM_CLOCK) -> int:
        """Start a case on the latest (or the named) version of `key`; returns the case id."""
        _check_payload(data)
        _check_intake(data)
        now = clock.now()
        with self.transaction() as session:
            info = self._definitions.find(key, version, session=session)
            loaded = self._definitions.load(info.id)
            initial = loaded.lifecycle.INITIAL
            if self._registry is not None and loaded.lifecycle.NAME == "grid_matter":
                self._registry.check_grid(session, data.get("grid_code"), now)
            if self._matter_lists is not None and loaded.lifecycle.NAME == "matter_list_change":
                self._matter_lists.check_application(session, data, clock.now())
                # The county is the area a list change concerns: carried as the case's and its tasks' grid
                # code, the area scope rules let the county's agency and government find and act on it.
                data = {**data, "grid_code": str(data["county_code"])}
            workflow = BpmnWorkflow(loaded.spec, loaded.subprocess_specs, script_engine=self._script_engine(clock))
            for task in workflow.get_tasks(state=TaskState.READY):
                # The kind of matter picks its time limits; definitions may rely on these being present.
                task.set_data(**{"sub_category": None, "urgency": "normal", "grid_code": None, **data})
            case = Case(definition_id=info.id, process_key=key, status=initial,
                        title=str(data.get("title", "")), grid_code=_str_or_none(data.get("grid_code")),
                        category=_str_or_none(data.get("category")),
                        sub_category=_str_or_none(data.get("sub_category")), urgency=_str_or_none(data.get("urgency")),
                        state="", state_hash="", last_seq=0,
                        last_event_hash=history.GENESIS, pending_timers={}, created_at=now, updated_at=now)
            _check_lengths(case)
            session.add(case)
            run = _Run(case, loaded, workflow, clock, [], role=role)
            run.status_moves.append([None, initial, "report" if initial == "reported" else initial, key])
            self._advance(run, session)
            self._commit(session, run, "start", actor, role,
                         {"key": key, "version": info.version, "data": data}, None)
        self._instances.put(case, workflow)
        return case.id

    def complete_task(self, task_id: int, data: dict, *, actor: str, role: str,
                      clock: Clock = SYSTEM_CLOCK) -> None:
        """Complete a task; `{"final": false}` on a form with a `final` field is staged feedback (阶段办结),
        recorded as `progress`: the task stays open and the case where it is."""
        _check_payload(data)
        staged = data.get("final") is False

        def apply(run: _Run, row: HumanTask, spiff_task):
            props = properties(spiff_task.task_spec)
            fields = parse_form(props.get("form"))
            problems = check_data(fields, data)
            if problems:
                raise InvalidCommand(f"task {row.id} ({row.element_id}): " + "; ".join(problems))
            if staged:
                self._progress(run, row, spiff_task, data, actor)
                return
            self._check_dispatch(run, props, spiff_task, data)
            explanation = row.state == "explanation_required"
            run.move_task(row, "submit_explanation" if explanation else "complete",
                          sign_required=_sign_required(spiff_task))
            row.actor = actor
            reviewed = properties(spiff_task.task_spec).get("reviews")
            if reviewed:
                self._review(run, reviewed, bool(data.get("accepted")))
            # An optional field left out is None, so conditions may test it without failing on a
            # variable that does not exist.
            # The classification a verification leaves out stays as reported.
            spiff_task.set_data(**{**{f.name: None for f in fields
                                      if not f.required and not (f.name in KEPT_WHEN_OMITTED and f.name in spiff_task.data)},
                                   **data})
            spiff_task.run()

        self._task_command(task_id, "progress" if staged else "complete", {"data": data}, actor, role, clock, apply)

    @staticmethod
    def _progress(run: _Run, row: HumanTask, spiff_task, data: dict, actor: str) -> None:
        """Staged feedback: the unit reports how far it got; its task stays open, the status stays."""
        if row.state == "explanation_required":
            raise InvalidCommand(f"task {row.id} is a written explanation; it has no staged feedback",
                                 zh=f"任务 {row.id} 为书面说明，不适用阶段反馈")
        if row.state == "offered" and _sign_required(spiff_task):
            raise InvalidCommand(f"task {row.id}: sign for the task (签收) before reporting progress",
                                 zh=f"任务 {row.id}：请先签收再反馈阶段进展")
        if row.state == "signed_for":
            run.move_task(row, "start", sign_required=True)
        row.actor = actor
        spiff_task.set_data(progress=[*(spiff_task.data.get("progress") or []), data])

    def _check_dispatch(self, run: _Run, props: dict, spiff_task, data: dict) -> None:
        """A dispatch names registered units (条例 §16), and an escalation stops at the city (条例 §17)."""
        field = props.get("escalates_with")
        level = _str_or_none(spiff_task.data.get(props["agency_level"])) if "agency_level" in props else None
        if field and data.get(field) == "escalate" and level == LEVELS[-1]:
            raise InvalidCommand(f"the {level} is the top level: a matter cannot be escalated above it (条例第十七条); "
                                 "dispatch it to a city unit or do not file it",
                                 zh="市级为最高层级，事项不能再向上报送（条例第十七条）：请派遣至市级单位或不予立案")
        named = props.get("registered_units")
        if named and self._registry is not None:
            lead_field, _, assisting_field = (part.strip() for part in named.partition(","))
            self._registry.check_units(object_session(run.case), data.get(lead_field),
                                       data.get(assisting_field) if assisting_field else None,
                                       int(props.get("max_assisting_units", MAX_ASSISTING_UNITS)))

    @staticmethod
    def _review(run: _Run, element_id: str, accepted: bool) -> None:
        """The agency's review decides the written explanation it reviews (the latest submitted one)."""
        submitted = [t for t in run.tasks if t.element_id == element_id and t.state == "explanation_submitted"]
        if not submitted:
            raise InvalidCommand(f"there is no submitted {element_id} explanation to review")
        run.move_task(submitted[-1], "accept_explanation" if accepted else "reject_explanation")

    def sign_for(self, task_id: int, *, actor: str, role: str, clock: Clock = SYSTEM_CLOCK) -> None:
        def apply(run: _Run, row: HumanTask, spiff_task):
            late = row.state == "overdue"
            run.move_task(row, "sign_for", sign_required=_sign_required(spiff_task))
            row.actor = actor
            target = properties(spiff_task.task_spec).get("status_on_sign")
            if target and not late:  # signing after the deadline does not make the matter any less overdue
                run.move_status(target, row.element_id, {})

        self._task_command(task_id, "sign_for", {}, actor, role, clock, apply)

    def return_task(self, task_id: int, reason: str, *, actor: str, role: str,
                    clock: Clock = SYSTEM_CLOCK) -> None:
        def apply(run: _Run, row: HumanTask, spiff_task):
            props = properties(spiff_task.task_spec)
            limit = props.get("max_returns")
            if limit is not None and self._count_returns(run, row.element_id) >= int(limit):
                raise InvalidCommand(f"this matter was already returned {limit} times at {row.element_id}; "
                                     "the agency's dispatch stands (审定)")
            self._check_return_window(run, row)
            run.move_task(row, "return_", returnable="status_on_return" in props, reason=reason)
            row.actor, row.return_reason = actor, reason
            run.move_status(props["status_on_return"], row.element_id, {"reason": reason})
            spiff_task.set_data(returned=True, return_reason=reason)
            spiff_task.run()

        self._task_command(task_id, "return", {"reason": reason}, actor, role, clock, apply)

    def refuse_task(self, task_id: int, reason: str, *, actor: str, role: str,
                    clock: Clock = SYSTEM_CLOCK) -> None:
        """条例 §13: a grid worker refuses work that is not on the county's matter list in force. The task
        leaves through its refusal path (`refused` is true in the case data) into `status_on_refuse`."""
        def apply(run: _Run, row: HumanTask, spiff_task):
            props = properties(spiff_task.task_spec)
            if self._matter_lists is None:
                raise InvalidCommand("refusing needs the county matter lists, which this engine was built without")
            citation = self._matter_lists.refusal_grounds(object_session(run.case), run)
            run.move_task(row, "refuse", refusable="status_on_refuse" in props, reason=reason)
            row.actor, row.return_reason = actor, reason
            run.move_status(props["status_on_refuse"], row.element_id, {"reason": reason})
            run.notes["refusal"] = citation
            spiff_task.set_data(refused=True, refusal_reason=reason)
            spiff_task.run()

        self._task_command(task_id, "refuse", {"reason": reason}, actor, role, clock, apply)

    def send_message(self, case_id: int, name: str, payload: dict, *, actor: str, role: str,
                     clock: Clock = SYSTEM_CLOCK) -> None:
        """Deliver a message (a unit's feedback from another system, a resident's follow-up) to a case."""
        _check_payload(payload)

        def apply(run: _Run, session):
            waiting = _waiting_messages(run.workflow)
            if name not in waiting:
                raise InvalidCommand(f"case {case_id} is not waiting for message {name!r}"
                                     + (f"; it waits for {', '.join(sorted(waiting))}" if waiting else ""))
            run.workflow.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))

        self._case_command(case_id, "message", {"name": name, "payload": payload}, actor, role, clock, apply)

    def request_extension(self, task_id: int, days: int, reason: str, *, actor: str, role: str,
                          clock: Clock = SYSTEM_CLOCK) -> None:
        """延期申请: the unit asks, before its deadline and with a reason, for more working days."""
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION_DAYS:
            raise InvalidCommand(f"an extension is 1 to {MAX_EXTENSION_DAYS} working days, not {days!r}")

        def apply(run: _Run, row: HumanTask, spiff_task):
            timer = _deadline_of(spiff_task)
            if row.state == "overdue" or (timer is not None and _due(timer) <= run.clock.now()):
                raise InvalidCommand(f"the deadline of task {row.id} has passed; "
                                     "an extension must be asked for before it — explain in writing instead")
            if timer is None:
                raise InvalidCommand(f"task {row.id} has no deadline to extend")
            if row.extension_granted_days + days > MAX_EXTENSION_DAYS:
                raise InvalidCommand(f"{row.extension_granted_days} working days were granted already; the "
                                     f"total may not pass {MAX_EXTENSION_DAYS}")
            run.move_task(row, "request_extension", sign_required=_sign_required(spiff_task), reason=reason)
            row.extension_days, row.extension_reason = days, reason

        self._task_command(task_id, "request_extension", {"days": days, "reason": reason}, actor, role, clock,
                           apply)

    def decide_extension(self, task_id: int, approve: bool, *, actor: str, role: str, comment: str = "",
                         clock: Clock = SYSTEM_CLOCK) -> None:
        """The dispatching agency approves (the deadline moves by the working days asked) or refuses."""
        def apply(run: _Run, row: HumanTask, spiff_task):
            if row.state != "extension_requested":
                raise InvalidCommand(f"task {row.id} has no extension request waiting (it is {row.state})")
            if approve:
                timer = _deadline_of(spiff_task)
                deadlines = run.workflow.script_engine.deadlines
                try:
                    new_due = deadlines.add_working_days(_due(timer).isoformat(), row.extension_days)
                except ExpressionError as exc:
                    raise InvalidCommand(str(exc)) from None
                # The timer re-arms: SpiffWorkflow reads the due time it stored; the timer index follows.
                timer._set_internal_data(event_value=new_due)
                row.extension_granted_days += row.extension_days
            run.move_task(row, "decide_extension")

        self._task_command(task_id, "decide_extension", {"approve": approve, "comment": comment}, actor, role,
                           clock, apply, acting_role="grid_agency")

    def remind(self, task_id: int, note: str = "", *, actor: str, role: str, clock: Clock = SYSTEM_CLOCK) -> None:
        """催办: the agency reminds the unit before the deadline; recorded, nothing else changes."""
        def apply(run: _Run, row: HumanTask, spiff_task):
            if row.state == "overdue":
                raise InvalidCommand(f"task {row.id} is past its deadline: supervise (督办) instead of reminding")

        self._task_command(task_id, "remind", {"note": note}, actor, role, clock, apply, acting_role="grid_agency")

    def supervise(self, case_id: int, card: str, acting_level: str, note: str = "", *, actor: str, role: str,
                  clock: Clock = SYSTEM_CLOCK) -> None:
        """督办 by a higher level than the agency handling the case: normal → yellow card → red card."""
        if role != "grid_agency":
            raise InvalidCommand("supervision (督办) is for grid agencies")
        if card not in SUPERVISION_CARDS:
            raise InvalidCommand(f"card must be one of {', '.join(SUPERVISION_CARDS)}")
        if acting_level not in LEVELS:
            raise InvalidCommand(f"unknown agency level {acting_level!r}")

        def apply(run: _Run, session):
            handling = run.case.level or LEVELS[0]
            if LEVELS.index(acting_level) <= LEVELS.index(handling):
                raise InvalidCommand(f"the case is handled at {handling} level; only a higher level may "
                                     "supervise it (督办)")
            current = run.case.supervision
            if current and SUPERVISION_CARDS.index(card) < SUPERVISION_CARDS.index(current):
                raise InvalidCommand(f"supervision is at {current} already; it only goes up")
            run.case.supervision = card

        self._case_command(case_id, "supervise", {"card": card, "level": acting_level, "note": note}, actor, role,
                           clock, apply)

    # -- lifecycle: suspension, withdrawal, duplicates ----------------------------------------------

    def suspend(self, case_id: int, reason: str, *, actor: str, role: str, clock: Clock = SYSTEM_CLOCK) -> None:
        """挂账: the agency takes a matter that cannot be handled for now off the clock. Its deadline timers
        stop with the time they had left; the status remembers where it was."""
        _need_reason(reason, "a suspension (挂账)", "挂账")
        if role != "grid_agency":
            raise InvalidCommand("suspension (挂账) is for grid agencies", zh="挂账由网格化服务管理机构办理")

        def apply(run: _Run, session):
            before = run.case.status
            run.move_status("suspended", "suspend", {"reason": reason})
            now = run.clock.now()
            for timer in _waiting_deadlines(run.workflow):
                left = (_due(timer) - now).total_seconds()
                timer._set_internal_data(event_value=(now + SUSPENDED_FOR).isoformat(),
                                         suspended_seconds=max(left, 0.0))
            run.case.suspended_at, run.case.suspended_from = now, before

        self._case_command(case_id, "suspend", {"reason": reason}, actor, role, clock, apply)

    def resume(self, case_id: int, note: str = "", *, actor: str, role: str, clock: Clock = SYSTEM_CLOCK) -> None:
        """The suspended matter goes back to the status it left, each deadline re-armed with the time left."""
        if role != "grid_agency":
            raise InvalidCommand("resuming a suspended matter is for grid agencies", zh="恢复挂账事项由网格化服务管理机构办理")

        def apply(run: _Run, session):
            if run.case.status != "suspended":
                raise InvalidCommand(f"case {case_id} is {run.case.status}, not suspended",
                                     zh=f"案件 {case_id} 当前为 {run.case.status}，并未挂账")
            run.move_status(run.case.suspended_from or "in_progress", "resume", {})
            now = run.clock.now()
            for timer in _waiting_deadlines(run.workflow, suspended=True):
                left = timer.internal_data.pop("suspended_seconds")
                timer._set_internal_data(event_value=(now + timedelta(seconds=left)).isoformat())
            run.case.suspended_at, run.case.suspended_from = None, None

        self._case_command(case_id, "resume", {"note": note}, actor, role, clock, apply)

    def withdraw(self, case_id: int, reason: str, *, actor: str, role: str, clock: Clock = SYSTEM_CLOCK) -> None:
        """撤回: the platform withdraws a report on the reporter's behalf before it is dispatched; after
        dispatch only the agency may. The case ends cancelled and its tasks with it."""
        _need_reason(reason, "a withdrawal", "撤回")
        if role not in ("platform", "grid_agency"):
            raise InvalidCommand("a matter is withdrawn by the platform (for the reporter) or by the agency",
                                 zh="事项仅可由平台（代上报人）或网格化服务管理机构撤回")

        def apply(run: _Run, session):
            if role == "platform" and (run.case.unit is not None or run.case.status in AFTER_DISPATCH):
                raise InvalidCommand(f"case {case_id} is dispatched already ({run.case.status}); only the agency "
                                     "may withdraw it now",
                                     zh=f"案件 {case_id} 已派遣（{run.case.status}），只能由网格化服务管理机构撤回")
            run.move_status("cancelled", "withdraw", {"reason": reason})
            run.workflow.cancel()

        self._case_command(case_id, "withdraw", {"reason": reason}, actor, role, clock, apply)

    def link_duplicate(self, case_id: int, master_id: int, note: str = "", *, actor: str, role: str,
                       clock: Clock = SYSTEM_CLOCK) -> None:
        """重复件: the report `case_id` is the same matter as the open `master_id`. Its own tasks end; it is
        closed when the master is, and is never counted as a case of its own."""
        if role not in ("platform", "grid_agency", "grid_worker"):
            raise InvalidCommand("duplicates are linked by the platform, a grid agency or the grid worker",
                                 zh="重复件由平台、网格化服务管理机构或网格员关联")
        if not isinstance(master_id, int) or isinstance(master_id, bool) or master_id == case_id:
            raise InvalidCommand("a duplicate names another case as its master", zh="重复件须关联另一案件作为主件")

        def apply(run: _Run, session):
            if run.case.duplicate_of is not None:
                raise InvalidCommand(f"case {case_id} is a duplicate of case {run.case.duplicate_of} already",
                                     zh=f"案件 {case_id} 已是案件 {run.case.duplicate_of} 的重复件")
            if run.case.status not in DUPLICATE_FROM:
                raise InvalidCommand(f"case {case_id} is {run.case.status}: only a report not yet dispatched can be "
                                     "linked as a duplicate",
                                     zh=f"案件 {case_id} 当前为 {run.case.status}：仅未派遣的事项可关联为重复件")
            self._check_master(session, run.case, master_id)
            run.case.duplicate_of = master_id
            run.workflow.cancel()
            run.notes["duplicate_of"] = master_id

        self._case_command(case_id, "link_duplicate", {"master_id": master_id, "note": note}, actor, role, clock,
                           apply)

    def close_duplicate(self, case_id: int, *, actor: str = "engine", clock: Clock = SYSTEM_CLOCK) -> None:
        """The master of a duplicate was closed: the duplicate follows it (command of its own history)."""
        self._case_command(case_id, "close_duplicate", {}, actor, "system", clock, self._follow_master)

    @staticmethod
    def _follow_master(run: _Run, session) -> None:
        if run.case.duplicate_of is None:
            raise InvalidCommand(f"case {run.case.id} is not a duplicate", zh=f"案件 {run.case.id} 不是重复件")
        run.move_status("closed", "close_duplicate", {})

    @staticmethod
    def _check_master(session, duplicate: Case, master_id: int) -> None:
        """The master exists, is open, is no duplicate itself, and is in the same grid."""
        master = session.get(Case, master_id) if hasattr(session, "get") else None
        if master is None:
            raise NotFound(f"no case {master_id}")
        if master.duplicate_of is not None:
            raise InvalidCommand(f"case {master_id} is itself a duplicate of case {master.duplicate_of}; link to "
                                 "that one", zh=f"案件 {master_id} 本身是案件 {master.duplicate_of} 的重复件，请关联主件")
        if master.finished_at is not None or master.status in DONE_FOR_DUPLICATES:
            raise InvalidCommand(f"case {master_id} is {master.status}: a duplicate is linked to an open matter",
                                 zh=f"案件 {master_id} 当前为 {master.status}：重复件只能关联未办结的事项")
        if master.grid_code != duplicate.grid_code:
            raise InvalidCommand(f"case {master_id} is in grid {master.grid_code}, this report in "
                                 f"{duplicate.grid_code}: a duplicate is the same matter in the same grid",
                                 zh=f"案件 {master_id} 位于网格 {master.grid_code}，本事项位于 {duplicate.grid_code}："
                                    "重复件须为同一网格的同一事项")

    def set_urgency(self, case_id: int, urgency: str, reason: str, *, actor: str, role: str,
                    clock: Clock = SYSTEM_CLOCK) -> None:
        """加急: the dispatching agency raises a matter's urgency after intake. A running handling deadline is
        recomputed from the time-limit table for the new urgency, counted from when the task was offered;
        it never moves later. The history event carries the reason and the old and new due times."""
        _need_reason(reason, "raising the urgency (加急)", "加急")
        if role != "grid_agency":
            raise InvalidCommand("the urgency is raised by the dispatching grid agency", zh="加急由派遣的网格化服务管理机构决定")
        if urgency not in ("urgent", "emergency"):
            raise InvalidCommand(f"urgency is urgent or emergency, not {urgency!r}", zh=f"加急等级须为 urgent 或 emergency，而非 {urgency!r}")

        def apply(run: _Run, session):
            case = run.case
            if case.status in run.loaded.lifecycle.DONE_STATUSES or case.status == "suspended":
                raise InvalidCommand(f"case {case_id} is {case.status}: its urgency no longer changes",
                                     zh=f"案件 {case_id} 当前为 {case.status}，不能再加急")
            if (case.urgency or "normal") == urgency:
                raise InvalidCommand(f"case {case_id} is {urgency} already", zh=f"案件 {case_id} 已是 {urgency}")
            deadlines = run.workflow.script_engine.deadlines
            moved = []
            for timer in _waiting_deadlines(run.workflow):
                host = _host_of(timer)
                row = next((t for t in run.tasks if host is not None and t.spiff_task_id == str(host.id)), None)
                if row is None or not case.sub_category:
                    continue
                try:
                    due = deadlines.handling_deadline(row.created_at.isoformat(), case.sub_category, urgency)
                except ExpressionError as exc:
                    raise InvalidCommand(str(exc)) from None
                if datetime.fromisoformat(due) < _due(timer):
                    moved.append({"element": row.element_id, "from": _due(timer).isoformat(), "to": due})
                    timer._set_internal_data(event_value=due)
            for task in run.workflow.get_tasks(state=TaskState.READY):
                task.set_data(urgency=urgency)
            case.urgency = urgency
            run.notes["urgency"] = {"reason": reason, "deadlines": moved}

        self._case_command(case_id, "set_urgency", {"urgency": urgency, "reason": reason}, actor, role, clock,
                           apply)

    def _close_duplicates_of(self, session, run: _Run) -> None:
        """When a master is closed its open duplicates follow, each by a command in its own history."""
        if run.case.status != "closed" or not any(m[1] == "closed" for m in run.status_moves):
            return
        open_ones = session.scalars(sa.select(Case.id).where(Case.duplicate_of == run.case.id,
                                                             Case.status.in_(DUPLICATE_FROM))).all()
        for duplicate_id in open_ones:
            inner = self._load(session, duplicate_id, run.clock)
            inner.role = "system"
            before = inner.case.status
            self._follow_master(inner, session)
            self._advance(inner, session)
            self._commit(session, inner, "close_duplicate", "engine", "system", {"master_id": run.case.id}, before)

    def check_timers(self, case_id: int, *, actor: str = "timer-service", clock: Clock = SYSTEM_CLOCK) -> bool:
        """Let the case's due timers fire by `clock`, as a command of its own in the history; returns
        whether any was due (nothing is written when none was)."""
        with self.transaction() as session:
            return self.fire_due_timers(session, case_id, clock=clock, actor=actor)

    def fire_due_timers(self, session, case_id: int, *, clock: Clock, actor: str,
                        tasks: list[HumanTask] | None = None) -> bool:
        """The timer command inside a transaction the caller owns (the sweep claims cases in its own and
        hands in their task rows, read in one query for the batch)."""
        run = self._load(session, case_id, clock, tasks)
        run.role = "system"
        now = clock.now()
        due = [t for t in timers.waiting_timers(run.workflow) if t.due_at is not None and t.due_at < now]
        if not due:
            return False
        status_before = run.case.status
        self._advance(run, session)
        # The time each timer was due, beside the command's clock time (when it ran): lag after downtime.
        payload = {"due": [{"element": t.element_id, "due_at": t.due_at.isoformat()} for t in due]}
        self._commit(session, run, "timers", actor, "system", payload, status_before)
        return True

    # -- the command pipeline -----------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        """One command, one transaction. The loser of two concurrent commands on a case fails on the
        case's revision (or the history's unique sequence) wherever the write happens, commit included."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except (StaleDataError, IntegrityError):
            raise Conflict("the case was changed by another command at the same time; nothing of this one "
                           "was applied — reload it and try again") from None
        except OperationalError as exc:
            if "locked" in str(exc.orig):  # SQLite: another writer held the database past the busy timeout
                raise Conflict("the database is busy with another command; nothing was applied — try again") \
                    from None
            raise

    def _task_command(self, task_id, command, payload, actor, role, clock, apply, acting_role=None):
        """`acting_role`: the role that acts on the task when it is not the task's own (the agency deciding
        on a unit's extension request)."""
        with self.transaction() as session:
            tasks = self._task_rows(session, task_id)
            row = next((t for t in tasks if t.id == task_id), None)
            if row is None:
                raise NotFound(f"no task {task_id}")
            if role != (acting_role or row.role):
                raise InvalidCommand(f"{command} on task {task_id} is for the {acting_role or row.role} role, "
                                     f"not {role}")
            if row.state not in lifecycle.OPEN_STATES:
                raise TaskClosed(f"task {task_id} is {row.state}; nothing more can be done with it")
            run = self._load(session, row.case_id, clock, tasks)
            run.role = role
            status_before = run.case.status
            self._advance_if_due(run, session)  # a deadline that passed before this command takes effect first
            spiff_task = run.workflow.get_task_from_id(UUID(row.spiff_task_id))
            if spiff_task is None or spiff_task.state != TaskState.READY:
                raise Conflict(f"task {task_id} is no longer waiting in its case")
            try:
                apply(run, row, spiff_task)
            except lifecycle.TaskActionRefused as exc:
                raise InvalidCommand(f"task {task_id}: {exc}") from None
            except SpiffWorkflowException as exc:
                raise InvalidCommand(f"task {task_id}: {_spiff_message(exc)}") from None
            self._advance(run, session)
            payload = {"task_id": task_id, "element": row.element_id, "task_name": row.name, **payload}
            self._commit(session, run, command, actor, role, payload, status_before)
        self._instances.put(run.case, run.workflow)

    @staticmethod
    def _task_rows(session, task_id: int) -> list[HumanTask]:
        """The tasks of the task's case, in creation order, read with the case.

        The case and its tasks in one statement, so they come from one snapshot. Reading tasks before the
        case could pair stale task rows with a fresh case revision, and the revision check on the case
        would then let a second sign-for through."""
        case_of_task = sa.select(HumanTask.case_id).where(HumanTask.id == task_id).scalar_subquery()
        rows = session.execute(sa.select(Case, HumanTask).join(HumanTask, HumanTask.case_id == Case.id)
                               .where(Case.id == case_of_task).order_by(HumanTask.id)).all()
        # The session's identity map holds rows weakly: keep the case alive so `_load` finds it there
        # instead of reading its (large) state a second time.
        session.info["case"] = rows[0][0] if rows else None
        return [t for _, t in rows]

    def _script_engine(self, clock: Clock):
        """The evaluator of a command, with its clock and the rule versions it may use (the audit replay
        pins those a recorded command used)."""
        return script_engine(clock, self._calendars)

    def _case_command(self, case_id, command, payload, actor, role, clock, apply):
        with self.transaction() as session:
            run = self._load(session, case_id, clock)
            run.role = role
            status_before = run.case.status
            self._advance_if_due(run, session)
            try:
                apply(run, session)
            except SpiffWorkflowException as exc:
                raise InvalidCommand(f"case {case_id}: {_spiff_message(exc)}") from None
            self._advance(run, session)
            self._commit(session, run, command, actor, role, payload, status_before)
        self._instances.put(run.case, run.workflow)

    @staticmethod
    def tasks_of(session, case_ids: list[int]) -> dict[int, list[HumanTask]]:
        found: dict[int, list[HumanTask]] = {case_id: [] for case_id in case_ids}
        if case_ids:
            for row in session.scalars(sa.select(HumanTask).where(HumanTask.case_id.in_(case_ids))
                                       .order_by(HumanTask.id)):
                found[row.case_id].append(row)
        return found

    def _load(self, session, case_id: int, clock: Clock, tasks: list[HumanTask] | None = None) -> _Run:
        """The case first, then its tasks (unless given, read with it): a task row may be newer than the
        case revision it is checked against, never older."""
        case = session.get(Case, case_id)
        if case is None:
            raise NotFound(f"no case {case_id}")
        loaded = self._definitions.load(case.definition_id)
        workflow = self._instances.take(case.id, case.revision)
        if workflow is None:
            workflow = SERIALIZER.loads(case.state, loaded.spec, loaded.subprocess_specs, self._script_engine(clock))
        else:
            workflow.script_engine = self._script_engine(clock)   # this command's clock and rule versions
        if tasks is None:
            tasks = list(session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case_id)
                                         .order_by(HumanTask.id)))
        return _Run(case, loaded, workflow, clock, tasks)

    def _advance_if_due(self, run: _Run, session) -> None:
        if timers.any_due(run.workflow, run.clock.now()):
            self._advance(run, session)

    def _advance(self, run: _Run, session) -> None:
        """Let due timers fire, run engine steps, and bring human-task rows and the status in line.

        Commands call this before they act too, so a unit reporting back after its deadline is late
        even when no timer sweep ran in between."""
        try:
            run.workflow.refresh_timers()
            run.workflow.do_engine_steps(did_complete_task=run.reach)
        except SpiffWorkflowException as exc:
            raise InvalidCommand(f"case {run.case.id or '(new)'}: {_spiff_message(exc)}") from None
        ready = {str(t.id): t for t in run.workflow.get_tasks(state=TaskState.READY, manual=True)}
        known = {row.spiff_task_id: row for row in run.tasks}
        now = run.clock.now()
        for row in run.tasks:
            if row.state in lifecycle.OPEN_STATES and row.spiff_task_id not in ready:
                run.move_task(row, "cancel")
        for spiff_id, spiff_task in ready.items():
            if spiff_id in known:
                continue
            row = self._offer(run, spiff_task, now)
            if row.role == "grid_worker" and self._matter_lists is not None:
                self._matter_lists.check_assignment(session, run, row)
            session.add(row)
            run.tasks.append(row)
            run.task_moves.append((row, None, row.state))
            run.reach(spiff_task)

    @staticmethod
    def _offer(run: _Run, spiff_task, now: datetime) -> HumanTask:
        ts = spiff_task.task_spec
        props = properties(ts)
        data = spiff_task.data
        return HumanTask(case=run.case, spiff_task_id=str(spiff_task.id), element_id=ts.bpmn_id,
                         name=ts.bpmn_name or ts.bpmn_id, role=role_of(ts) or "unassigned",
                         grid_code=_str_or_none(data.get("grid_code")),
                         unit=_str_or_none(data.get(props["unit"])) if "unit" in props else None,
                         agency_level=_str_or_none(data.get(props["agency_level"])) if "agency_level" in props
                         else None,
                         state="explanation_required" if props.get("explanation") == "true" else "offered",
                         created_at=now, updated_at=now)

    @staticmethod
    def _conclude(run: _Run) -> dict:
        """What the case row takes from the state after a command, and its state hash (the audit replay
        recomputes exactly this); returns the data the case's latest task saw."""
        case, workflow = run.case, run.workflow
        data = workflow.last_task.data if workflow.last_task is not None else {}
        case.level = _str_or_none(data.get("level")) or case.level
        case.unit = _str_or_none(data.get("unit")) or case.unit
        case.state_hash = history.state_hash(workflow, case.status, case.level,
                                             [(t.element_id, t.state) for t in run.tasks])
        return data

    def _commit(self, session, run: _Run, command, actor, role, payload, status_before) -> None:
        case, workflow = run.case, run.workflow
        data = self._conclude(run)
        case.state = SERIALIZER.dumps(workflow)
        now = run.clock.now()
        case.updated_at = now
        if workflow.is_completed() and case.finished_at is None:
            case.finished_at = now
        if self._matter_lists is not None and any(m[1] == "filed" for m in run.status_moves) \
                and run.loaded.lifecycle.NAME == "matter_list_change":
            run.notes["matter_list"] = self._matter_lists.adopt(session, case, data, now)
        case.last_seq += 1
        prev = case.last_event_hash
        if case.id is None:  # a new case: its id goes into the event's hash
            session.flush()
        # Tasks are named by their SpiffWorkflow id, known before the rows are written, so the case, its
        # tasks and the event go to the database in one flush at commit.
        task_moves = [[row.spiff_task_id, row.element_id, before, after] for row, before, after in run.task_moves]
        timer_changes = timers.sync(session, case, workflow, now)
        fields = history.EventFields(
            case.id, case.last_seq, command, actor, role, payload, now, case.definition_id, status_before,
            case.status, {"status": run.status_moves, "tasks": task_moves, "timers": timer_changes,
                          **workflow.script_engine.deadlines.used(), **run.notes},
            case.state_hash, prev)
        case.last_event_hash = fields.digest()
        session.add(HistoryEvent(**vars(fields), event_hash=case.last_event_hash,
                                 # wall time of the write, beside the command's clock time
                                 recorded_at=utcnow()))
        # Events for webhooks go out with the command or not at all.
        outbox.record(session, run)
        for project in self.projections:
            project(session, run, fields)
        if run.case.duplicate_of is None:
            self._close_duplicates_of(session, run)

    @staticmethod
    def _check_return_window(run: _Run, row: HumanTask) -> None:
        """A unit may return a matter only within the return window of its kind (time-limit table)."""
        if not run.case.sub_category:
            return
        deadlines = run.workflow.script_engine.deadlines
        table = deadlines.time_limit_table()
        try:
            limit = table.limit(run.case.sub_category, run.case.urgency or "normal")
        except (UnknownSubCategory, ValueError):
            return  # a kind the table does not know has no window to enforce
        try:
            window_ends = limit.return_deadline(row.created_at, deadlines.calendar())
        except UnknownYear as exc:
            raise unknown_year(exc) from None
        deadlines.time_limits_version = table.version
        if run.clock.now() > window_ends:
            raise InvalidCommand(f"the return window ({limit.return_window_days} working days) ended "
                                 f"{window_ends.isoformat()}; the unit must handle the matter or explain in writing")

    @staticmethod
    def _count_returns(run: _Run, element_id: str) -> int:
        return sum(1 for t in run.tasks if t.element_id == element_id and t.state == "returned")


def _is_timer_on_task(spiff_task) -> bool:
    spec = spiff_task.task_spec
    # A cycle timer repeats a reminder (催办) beside the task; it is not the task's deadline.
    return isinstance(spec, BoundaryEvent) and isinstance(spec.event_definition, TimerEventDefinition) \
        and not isinstance(spec.event_definition, CycleTimerEventDefinition)


def _host_of(boundary_task):
    """The task a boundary event is attached to: its sibling under the boundary split."""
    parent = boundary_task.parent
    return next((c for c in parent.children if not isinstance(c.task_spec, BoundaryEvent)), None) if parent else None


def _deadline_of(spiff_task):
    """The waiting boundary timer on a task, if it has one."""
    parent = spiff_task.parent
    for sibling in (parent.children if parent else []):
        if _is_timer_on_task(sibling) and sibling.state == TaskState.WAITING:
            return sibling
    return None


def _due(timer_task) -> datetime:
    return TimerEventDefinition.get_datetime(timer_task.internal_data["event_value"])


def _waiting_messages(workflow) -> set[str]:
    """Names of the messages some waiting event of the case would catch (an event-based gateway
    waits on several at once)."""
    names = set()
    for task in workflow.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        for candidate in event_definitions(definition):
            if isinstance(candidate, BpmnMessageEventDefinition):
                names.add(candidate.name)
    return names


def _sign_required(spiff_task) -> bool:
    props = properties(spiff_task.task_spec)
    return "status_on_sign" in props or props.get("sign") == "true"


def _check_intake(data: dict) -> None:
    """A matter of a kind the negative list names is refused at intake, citing 条例 §14; any other kind
    must be in the city's admission catalog (§13)."""
    kind = data.get("sub_category")
    if kind is None:
        return
    try:
        check_admissible(str(kind))
    except OnNegativeList as exc:
        raise InvalidCommand(f"not admissible: {exc}") from None
    if str(kind) not in shipped_catalog():
        raise InvalidCommand(f"sub_category {kind!r} is not in the admission catalog (准入分类目录); "
                             f"known kinds include {', '.join(shipped_catalog().codes[:5])}, ...")


def _check_payload(data) -> None:
    if not isinstance(data, dict):
        raise InvalidCommand("data must be a JSON object")
    if len(data) > MAX_PAYLOAD_KEYS:
        raise InvalidCommand(f"data has {len(data)} fields; the limit is {MAX_PAYLOAD_KEYS}")
    bad = [k for k in data if not isinstance(k, str) or not k.isidentifier() or k.startswith("_")]
    if bad:
        raise InvalidCommand(f"field names must be identifiers not starting with '_': {bad[:5]}")


def _need_reason(reason, what: str, zh_what: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidCommand(f"{what} needs a reason", zh=f"{zh_what}须说明理由")


def _waiting_deadlines(workflow, *, suspended: bool = False) -> list:
    """The waiting boundary timers (deadlines) of the case; with `suspended`, those a suspension stopped."""
    found = []
    for task in workflow.get_tasks(state=TaskState.WAITING):
        if not _is_timer_on_task(task):
            continue
        if suspended == ("suspended_seconds" in task.internal_data):
            found.append(task)
    return found


def _check_lengths(case: Case) -> None:
    """The matter's fields the case row keeps must fit their columns (PostgreSQL refuses longer text; SQLite
    would keep it)."""
    for name in ("title", "grid_code", "category", "sub_category", "urgency"):
        value, limit = getattr(case, name), Case.__table__.c[name].type.length
        if value is not None and len(value) > limit:
            raise InvalidCommand(f"data.{name} is {len(value):,} characters; the limit is {limit}")


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


def _spiff_message(exc: SpiffWorkflowException) -> str:
    """What went wrong at which element, without the definition's script text (a message is for the person
    acting, who cannot change the definition)."""
    cause = exc
    while cause is not None and not isinstance(cause, ExpressionError):
        cause = cause.__cause__ or cause.__context__
    spec = getattr(exc, "task_spec", None)
    if cause is not None:
        element = getattr(spec, "bpmn_id", None)
        return f"{cause.message} (at {element})" if element else cause.message
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return message


