"""Who may see and act on which cases and tasks: the scope rules, as SQL filters applied inside queries.

A principal is the person or system behind a request. Scope is enforced where rows are read, so a list,
a count or a lookup never reveals a case outside it: a case out of scope is "not found", not "forbidden".
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from rules.levels import LEVELS

from engine.errors import EngineError
from engine.store.models import Case, HumanTask

GRID_WORKER, GRID_AGENCY, RESPONSIBLE_UNIT = "grid_worker", "grid_agency", "responsible_unit"
PROCESS_ADMIN, AUDITOR, PLATFORM = "process_admin", "auditor", "platform"
# 县（市）、区党委、政府: agrees to changes of its county's grid matter list (条例 §13), and sees nothing else.
COUNTY_GOVERNMENT = "county_government"
ROLES = (GRID_WORKER, GRID_AGENCY, RESPONSIBLE_UNIT, PROCESS_ADMIN, AUDITOR, PLATFORM, COUNTY_GOVERNMENT)
LIST_CHANGE_PROCESS = "matter_list_change"  # its cases carry the county code as their grid code
# Roles that read every case: the auditor (纪检, 督查) and the city platform's system account.
SEE_ALL = frozenset({AUDITOR, PLATFORM})
# Roles that read cases at all; the process administrator manages definitions and rules, not matters.
CASE_READERS = frozenset({GRID_WORKER, GRID_AGENCY, RESPONSIBLE_UNIT, AUDITOR, PLATFORM, COUNTY_GOVERNMENT})


class Forbidden(EngineError):
    """The principal's role may not do this at all (a scope miss is NotFound instead)."""

    code = "forbidden"


class InvalidPrincipal(EngineError):
    code = "invalid_principal"


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    grid_code: str | None = None
    unit: str | None = None
    level: str | None = None
    area_code: str | None = None

    def __post_init__(self):
        for problem in principal_problems(self):
            raise InvalidPrincipal(problem)

    @property
    def key(self) -> str:
        """Who this is for records that are per caller (idempotency keys)."""
        return f"{self.role}:{self.user}"


def principal_problems(p: Principal) -> list[str]:
    """What a principal of its role must carry: a worker its grid, an agency its level and area, a unit
    its code. Checked when a token is issued and again when it is read."""
    problems = []
    if not isinstance(p.user, str) or not p.user.strip():
        problems.append("a principal needs a user name")
    if p.role not in ROLES:
        problems.append(f"unknown role {p.role!r}; known: {', '.join(ROLES)}")
    elif p.role == GRID_WORKER and not p.grid_code:
        problems.append("a grid worker's token names their grid (grid_code)")
    elif p.role == RESPONSIBLE_UNIT and not p.unit:
        problems.append("a responsible unit's token names its unit code")
    elif p.role == GRID_AGENCY:
        if p.level not in LEVELS:
            problems.append(f"a grid agency's token names its level, one of {', '.join(LEVELS)}")
        if not p.area_code or not p.area_code.isdigit() or len(p.area_code) not in (6, 9, 12):
            problems.append("a grid agency's token names its area: a 6-, 9- or 12-digit division code")
    elif p.role == COUNTY_GOVERNMENT and not is_county_code(p.area_code):
        problems.append("a county government's token names its county (area_code): a 6-digit county-level "
                        "division code such as 410702")
    return problems


def is_county_code(code) -> bool:
    """A 6-digit county-level division code (GB/T 2260); one ending in 00 is a city's, not a county's."""
    return isinstance(code, str) and len(code) == 6 and code.isdigit() and not code.endswith("00")


def area_prefix(division_code: str) -> str:
    """The start every grid code inside a division shares. Grid codes begin with the 12-digit community
    code; a township is its first 9 digits, a county its first 6, a city (xxxx00) its first 4."""
    if len(division_code) == 6 and division_code.endswith("00"):
        return division_code[:4]
    return division_code


def in_area(grid_code: str | None, area_code: str | None) -> bool:
    return bool(grid_code and area_code) and grid_code.startswith(area_prefix(area_code))


def _grid_in_area(column, area_code: str):
    # Grid and division codes are digits only (checked above), so LIKE needs no escaping.
    return column.like(area_prefix(area_code) + "%")


def case_scope(p: Principal):
    """A filter on `Case`: the cases `p` may see."""
    if p.role in SEE_ALL:
        return sa.true()
    if p.role == GRID_WORKER:
        return Case.grid_code == p.grid_code
    if p.role == GRID_AGENCY:
        return _grid_in_area(Case.grid_code, p.area_code)
    if p.role == RESPONSIBLE_UNIT:
        # What was dispatched to the unit, including matters it returned: it acted on them; and the
        # matter list changes it applied for (their case's unit is the applicant).
        return sa.or_(Case.id.in_(sa.select(HumanTask.case_id).where(HumanTask.unit == p.unit)),
                      sa.and_(Case.process_key == LIST_CHANGE_PROCESS, Case.unit == p.unit))
    if p.role == COUNTY_GOVERNMENT:
        # Exact county code: no grid code (16 characters) equals it, so no grid matter is ever in scope.
        return sa.and_(Case.process_key == LIST_CHANGE_PROCESS, Case.grid_code == p.area_code)
    return sa.false()


def task_scope(p: Principal):
    """A filter on `HumanTask`: the tasks that are `p`'s to act on ("my tasks"), or all for readers of all."""
    if p.role in SEE_ALL:
        return sa.true()
    if p.role == GRID_WORKER:
        return sa.and_(HumanTask.role == GRID_WORKER, HumanTask.grid_code == p.grid_code)
    if p.role == GRID_AGENCY:
        return sa.and_(HumanTask.role == GRID_AGENCY, HumanTask.agency_level == p.level,
                       _grid_in_area(HumanTask.grid_code, p.area_code))
    if p.role == RESPONSIBLE_UNIT:
        return sa.and_(HumanTask.role == RESPONSIBLE_UNIT, HumanTask.unit == p.unit)
    if p.role == COUNTY_GOVERNMENT:
        return sa.and_(HumanTask.role == COUNTY_GOVERNMENT, HumanTask.grid_code == p.area_code)
    return sa.false()


def may_act_on_task(p: Principal, *, task_role: str, task_grid: str | None, task_unit: str | None,
                    task_level: str | None) -> bool:
    """The task's own lane and addressee: the worker of its grid, the agency of its level and area, the
    unit it was dispatched to, the government of its county."""
    if p.role != task_role:
        return False
    if p.role == GRID_WORKER:
        return task_grid == p.grid_code
    if p.role == GRID_AGENCY:
        return task_level == p.level and in_area(task_grid, p.area_code)
    if p.role == RESPONSIBLE_UNIT:
        return task_unit is not None and task_unit == p.unit
    if p.role == COUNTY_GOVERNMENT:
        return task_grid is not None and task_grid == p.area_code
    return False


def is_dispatching_agency(p: Principal, *, case_grid: str | None, case_level: str | None) -> bool:
    """The agency that dispatched a case's current task: the case's handling level, in its area. It
    decides extension requests and reminds the unit."""
    return p.role == GRID_AGENCY and case_level == p.level and in_area(case_grid, p.area_code)


def is_higher_agency(p: Principal, *, case_grid: str | None, case_level: str | None) -> bool:
    """督办 comes from a level above the one handling the case, over an area that contains it."""
    handling = case_level or LEVELS[0]
    return (p.role == GRID_AGENCY and p.level in LEVELS and in_area(case_grid, p.area_code)
            and LEVELS.index(p.level) > LEVELS.index(handling))
