"""Commands on behalf of a principal: the case service's commands, each first checked against who asks.

Scope is checked on the rows the command will touch: a task outside the principal's cases is not found;
a task they can see but is not theirs to act on (another lane, grid, unit or level) is forbidden. The
history records the principal as the actor.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine.access import scopes
from engine.access.scopes import Forbidden, Principal
from engine.cases.commands import CaseService
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Conflict, InvalidCommand, NotFound, TaskClosed
from engine.execution.functions import routing
from engine.store.models import Case, HumanTask
from rules.task_lifecycle import OPEN_STATES

STARTERS = frozenset({scopes.GRID_WORKER, scopes.PLATFORM})
MESSAGE_SENDERS = frozenset({scopes.PLATFORM})
# 条例 §13: "由有关部门提出申请" — a change is applied for by a department (a linkage department, not a
# service company), or by the county's own grid authority, which draws up the list "会同有关部门".
LIST_APPLICANTS = frozenset({scopes.RESPONSIBLE_UNIT, scopes.GRID_AGENCY})
DEPARTMENT = "linkage_department"
# The fields of a change application the applicant gives; county and applicant come from the address and token.
LIST_CHANGE_FIELDS = ("version", "effective_from", "reason", "add", "remove", "temporary", "remove_temporary")


@dataclass(frozen=True)
class _Target:
    task_role: str
    task_grid: str | None
    task_unit: str | None
    task_level: str | None
    case_id: int
    case_grid: str | None
    case_level: str | None
    task_state: str = ""     # as it was when the request was checked, before its command ran


class ActingCases:
    def __init__(self, cases: CaseService, readers):
        self._cases = cases
        self._readers = readers

    # -- checks ---------------------------------------------------------------------------------------

    def _target(self, p: Principal, task_id: int) -> _Target:
        query = (sa.select(HumanTask.role, HumanTask.grid_code, HumanTask.unit, HumanTask.agency_level,
                           Case.id, Case.grid_code, Case.level, HumanTask.state)
                 .join(Case, Case.id == HumanTask.case_id)
                 .where(HumanTask.id == task_id, scopes.case_scope(p)))
        with self._readers() as session:
            row = session.execute(query).first()
        if row is None:
            raise NotFound(f"no task {task_id}")
        return _Target(*row)

    def _own_task(self, p: Principal, task_id: int, action: str) -> _Target:
        target = self._target(p, task_id)
        if not scopes.may_act_on_task(p, task_role=target.task_role, task_grid=target.task_grid,
                                      task_unit=target.task_unit, task_level=target.task_level):
            raise Forbidden(f"task {task_id} is not yours to {action}: it is addressed to the "
                            f"{target.task_role} lane" + _addressee(target))
        return target

    def _dispatching_agency(self, p: Principal, task_id: int, action: str) -> _Target:
        target = self._target(p, task_id)
        if not scopes.is_dispatching_agency(p, case_grid=target.case_grid, case_level=target.case_level):
            raise Forbidden(f"only the grid agency that dispatched case {target.case_id} "
                            f"({target.case_level or 'no'} level) may {action}")
        return target

    def _visible_case(self, p: Principal, case_id: int) -> tuple[str | None, str | None]:
        with self._readers() as session:
            row = session.execute(sa.select(Case.grid_code, Case.level)
                                  .where(Case.id == case_id, scopes.case_scope(p))).first()
        if row is None:
            raise NotFound(f"no case {case_id}")
        return row[0], row[1]

    # -- commands -------------------------------------------------------------------------------------

    def start(self, p: Principal, key: str, data: dict, *, version: int | None = None,
              clock: Clock = SYSTEM_CLOCK) -> int:
        """A grid worker reports in their own grid; the platform reports for any grid (hotline, apps)."""
        if p.role not in STARTERS:
            raise Forbidden(f"the {p.role} role does not report matters; grid workers and the platform do")
        if not isinstance(data, dict):
            raise InvalidCommand("data must be a JSON object")
        if p.role == scopes.GRID_WORKER:
            grid = data.get("grid_code", p.grid_code)
            if grid != p.grid_code:
                raise Forbidden(f"a grid worker reports matters in their own grid ({p.grid_code}), not {grid!r}")
            data = {**data, "grid_code": p.grid_code}
        return self._cases.start(key, data, actor=p.user, role=p.role, version=version, clock=clock)

    def complete(self, p: Principal, task_id: int, data: dict, *, clock: Clock = SYSTEM_CLOCK) -> int:
        target = self._own_task(p, task_id, "complete")
        _raced(target, self._cases.complete_task, task_id, data, actor=p.user, role=p.role, clock=clock)
        return target.case_id

    def sign_for(self, p: Principal, task_id: int, *, clock: Clock = SYSTEM_CLOCK) -> int:
        target = self._own_task(p, task_id, "sign for")
        _raced(target, self._cases.sign_for, task_id, actor=p.user, role=p.role, clock=clock)
        return target.case_id

    def return_task(self, p: Principal, task_id: int, reason: str, *, clock: Clock = SYSTEM_CLOCK) -> int:
        if not reason or not reason.strip():
            raise InvalidCommand("a return (退单) needs a reason")
        target = self._own_task(p, task_id, "return")
        _raced(target, self._cases.return_task, task_id, reason.strip(), actor=p.user, role=p.role, clock=clock)
        return target.case_id

    def request_extension(self, p: Principal, task_id: int, days: int, reason: str, *,
                          clock: Clock = SYSTEM_CLOCK) -> int:
        if not reason or not reason.strip():
            raise InvalidCommand("an extension request (延期申请) needs a reason")
        target = self._own_task(p, task_id, "ask an extension for")
        _raced(target, self._cases.request_extension, task_id, days, reason.strip(), actor=p.user, role=p.role, clock=clock)
        return target.case_id

    def decide_extension(self, p: Principal, task_id: int, approve: bool, comment: str = "", *,
                         clock: Clock = SYSTEM_CLOCK) -> int:
        target = self._dispatching_agency(p, task_id, "decide an extension request")
        _raced(target, self._cases.decide_extension, task_id, approve, actor=p.user, role=p.role, comment=comment, clock=clock)
        return target.case_id

    def remind(self, p: Principal, task_id: int, note: str = "", *, clock: Clock = SYSTEM_CLOCK) -> int:
        target = self._dispatching_agency(p, task_id, "remind (催办)")
        _raced(target, self._cases.remind, task_id, note, actor=p.user, role=p.role, clock=clock)
        return target.case_id

    def supervise(self, p: Principal, case_id: int, card: str, note: str = "", *,
                  clock: Clock = SYSTEM_CLOCK) -> int:
        grid, level = self._visible_case(p, case_id)
        if not scopes.is_higher_agency(p, case_grid=grid, case_level=level):
            raise Forbidden(f"supervision (督办) of case {case_id} comes from a grid agency above its handling "
                            f"level ({level or 'community'}) whose area contains it")
        self._cases.supervise(case_id, card, p.level, note, actor=p.user, role=p.role, clock=clock)
        return case_id

    def refuse(self, p: Principal, task_id: int, reason: str, *, clock: Clock = SYSTEM_CLOCK) -> int:
        """条例 §13: a grid worker refuses his task when the matter is off the county's list in force."""
        if p.role != scopes.GRID_WORKER:
            raise Forbidden("only a grid worker may refuse work off the county's matter list (条例第十三条); "
                            "a responsible unit returns a task instead (退单)")
        if not reason or not reason.strip():
            raise InvalidCommand("a refusal needs a reason")
        target = self._own_task(p, task_id, "refuse")
        _raced(target, self._cases.refuse_task, task_id, reason.strip(), actor=p.user, role=p.role, clock=clock)
        return target.case_id

    def apply_for_list_change(self, p: Principal, county_code: str, change: dict, *,
                              clock: Clock = SYSTEM_CLOCK) -> int:
        """Start the approval case of a change to a county's grid matter list (`change`: LIST_CHANGE_FIELDS,
        e.g. from `MatterListStore.change_from_file`); the applicant is the caller."""
        self.check_list_applicant(p, county_code)
        data = {k: change[k] for k in LIST_CHANGE_FIELDS if change.get(k) is not None}
        data.update(county_code=county_code, applicant=p.unit or p.user)
        if p.unit:
            data["unit"] = p.unit  # the case's unit: the applying department follows its application
        return self._cases.start(scopes.LIST_CHANGE_PROCESS, data, actor=p.user, role=p.role, clock=clock)

    def check_list_applicant(self, p: Principal, county_code: str) -> None:
        """Forbidden unless `p` may apply for a change to this county's list (checked before a file is read)."""
        if p.role not in LIST_APPLICANTS:
            raise Forbidden(f"the {p.role} role does not apply for matter list changes; departments "
                            "(有关部门, 条例第十三条) and the county grid authority do")
        if not scopes.is_county_code(county_code):
            raise InvalidCommand(f"{county_code!r} is not a county: give its 6-digit division code, e.g. 410702")
        if p.role == scopes.GRID_AGENCY and (p.level != "county" or p.area_code != county_code):
            raise Forbidden(f"only county {county_code}'s own grid authority (county level) applies for its "
                            f"list; you are the {p.level} agency of {p.area_code}")
        if p.role == scopes.RESPONSIBLE_UNIT:
            unit = routing().units.get(p.unit)  # the shipped unit list the registry is seeded from
            if unit is None or unit.kind != DEPARTMENT:
                raise Forbidden(f"unit {p.unit} is " + ("not a known unit" if unit is None else f"a {unit.kind}")
                                + "; a change is applied for by a department (有关部门, 条例第十三条)")

    def send_message(self, p: Principal, case_id: int, name: str, payload: dict, *,
                     clock: Clock = SYSTEM_CLOCK) -> int:
        if p.role not in MESSAGE_SENDERS:
            raise Forbidden("messages come from other systems through the platform account")
        self._visible_case(p, case_id)
        self._cases.send_message(case_id, name, payload, actor=p.user, role=p.role, clock=clock)
        return case_id


def _raced(target: _Target, command, task_id, *args, **kwargs) -> None:
    """Run a task command; a task that was open when the request was checked and is closed when its command
    reads it was closed by a concurrent command: the request lost a race (a conflict), rather than asking
    for something the task's state never allowed."""
    try:
        command(task_id, *args, **kwargs)
    except TaskClosed as exc:
        if target.task_state in OPEN_STATES:
            raise Conflict(f"{exc}: another command closed it while this one was on its way; nothing of this "
                           "one was applied") from None
        raise


def _addressee(t: _Target) -> str:
    if t.task_role == scopes.GRID_WORKER:
        return f" of grid {t.task_grid}"
    if t.task_role == scopes.RESPONSIBLE_UNIT:
        return f" for unit {t.task_unit}"
    if t.task_role == scopes.GRID_AGENCY:
        return f" at {t.task_level} level"
    if t.task_role == scopes.COUNTY_GOVERNMENT:
        return f" of county {t.task_grid}"
    return ""
