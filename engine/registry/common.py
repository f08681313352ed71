"""What the registry's modules share: its errors, results, sheet columns and the row look-ups every change and
read makes (a grid in force on a day, a code parsed, a filing written)."""
from __future__ import annotations

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rules.grid_codes import (
    GridCode, InvalidGridCode,
)
from rules.tables import TableProblem

from engine.errors import Conflict, EngineError, NotFound
from engine.store.models import Filing, Grid, GridWorker


KINDS = ("divisions", "grids", "workers")
EMPLOYMENT = {"full_time": "专职网格员", "part_time": "兼职网格员"}
# Spreadsheets written by hand say 专职/兼职 more often than the codes.
_EMPLOYMENT_WORDS = {"专职": "full_time", "兼职": "part_time", "专职网格员": "full_time", "兼职网格员": "part_time"}
FILING_KINDS = ("grid_created", "grid_recoded", "grid_merged", "grid_split", "grid_redrawn")

# The city's government service hotline, printed when no division on the way up has a supervision number.
DEFAULT_SUPERVISION_PHONE = "12345"
DUTIES = ("采集核实网格内基础信息；收集社情民意；宣传法律政策；为群众办理民生事项；排查化解矛盾纠纷；"
          "排查安全隐患；协助做好社会治安防控；对发现的问题及时登记上报，在职责范围内处置，"
          "不能处置的通过平台逐级上报。")

# Every column a sheet of each kind has, in export order; import needs the `_REQUIRED` ones, the others may be
# absent or blank (they are derived from the code, or default to the import date) but are checked if given.
COLUMNS = {
    "divisions": ("code", "name", "level", "parent_code", "supervision_phone"),
    "grids": ("code", "name", "grid_type", "households", "community_code", "boundary", "effective_from"),
    "workers": ("grid_code", "name", "phone", "employment", "effective_from"),
}
_REQUIRED = {
    "divisions": ("code", "name"),
    "grids": ("code", "name", "households", "boundary"),
    "workers": ("grid_code", "name", "phone", "employment"),
}
NOTICE_COLUMNS = ("grid_code", "grid_name", "area", "worker_name", "worker_role", "phone", "duties",
                  "supervision_phone")

MAX_UPLOAD_BYTES = 10 * 1024 * 1024   # a county's registry is a few thousand rows; more is a wrong file
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,18}[0-9]$")
_BEIJING = timezone(timedelta(hours=8))
_SAMPLE = ("divisions", "grids", "workers")   # parents before children


class RegistryError(EngineError):
    code = "registry"


class RegistryImportError(RegistryError):
    """An import refused, nothing changed; `problems` lists every bad row (TableProblem, spreadsheet rows)."""

    code = "registry_import"

    def __init__(self, kind: str, problems: list[TableProblem]):
        self.kind = kind
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"import of {kind} refused, nothing was changed; {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class ImportResult:
    kind: str
    added: int
    unchanged: int

    def __str__(self) -> str:
        return f"{self.kind}: {self.added} added, {self.unchanged} already registered"


@dataclass(frozen=True)
class GridChange:
    """What a merge or split did: the rows it closed and opened, who moved where, what needs attention."""

    kind: str                       # grid_merged, grid_split
    retired: list[Grid]
    opened: list[Grid]
    workers_moved: list[dict]       # {name, employment, from, to}
    workers_unassigned: list[dict]  # {name, employment, from, to: None}: no longer serving any grid
    warnings: list[str]             # household sizes (§8), grids left without a full-time worker (§10)
    filing_id: int


@dataclass(frozen=True)
class Lineage:
    """A code's rows with everything before and after them, and the filings that record each change."""

    code: str
    rows: list[Grid]        # by effective_from
    changes: list[Filing]   # in filing order


_MULTI_CODE_KINDS = ("grid_recoded", "grid_merged", "grid_split")


def _codes_in(filing: Filing) -> set[str]:
    """Every grid code a filing names: the one it is indexed by and, for recodes, merges and splits, the rest."""
    payload = filing.payload or {}
    codes = {filing.grid_code}
    if filing.kind == "grid_recoded":
        codes |= {payload.get("old_code"), payload.get("new_code")}
    elif filing.kind == "grid_merged":
        codes |= {s.get("code") for s in payload.get("sources", [])} | {payload.get("result", {}).get("code")}
    elif filing.kind == "grid_split":
        codes |= {payload.get("source", {}).get("code")} | {p.get("code") for p in payload.get("parts", [])}
    codes.discard(None)
    return codes


def _flush_or_conflict(session, what: str) -> None:
    try:
        session.flush()
    except IntegrityError:   # a concurrent change opened a row with one of these codes first
        raise Conflict(f"the registry changed during the {what}; nothing was changed, run it again") from None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown registry kind {kind!r}; known: {', '.join(KINDS)}")


def _parse_grid_code(text: str) -> GridCode:
    try:
        return GridCode.parse(text)
    except InvalidGridCode as exc:
        raise RegistryError(str(exc)) from None


def _parent_division(code: str) -> str:
    """The division above: township → county, community → township; a county's parent is its city."""
    return code[:4] + "00" if len(code) == 6 else code[:-3]


def _current_grid(session, code: str, *, lock: bool = False) -> Grid:
    query = sa.select(Grid).where(Grid.code == code, Grid.effective_to.is_(None))
    # Locked, a second change to the same grid waits and then finds it retired (PostgreSQL; SQLite writers
    # already queue on BEGIN IMMEDIATE).
    grid = session.scalar(query.with_for_update() if lock else query)
    if grid is None:
        retired = session.scalar(sa.select(sa.func.max(Grid.effective_to)).where(Grid.code == code))
        raise NotFound(f"grid {code} was retired on {retired}" if retired else f"no grid {code} in the registry")
    return grid


def _current_workers(grid_code: str):
    return (sa.select(GridWorker).where(GridWorker.grid_code == grid_code, GridWorker.effective_to.is_(None))
            .order_by(GridWorker.id))


def _in_force(model, on_date: date):
    return sa.and_(model.effective_from <= on_date,
                   sa.or_(model.effective_to.is_(None), model.effective_to > on_date))


def _not_before(grid: Grid, on_date: date) -> None:
    if on_date < grid.effective_from:
        raise RegistryError(f"grid {grid.code} is in force from {grid.effective_from}; a change cannot take effect "
                            f"before that ({on_date})")


def _grid_payload(grid: Grid, *, row_id: bool = False) -> dict:
    return {**({"row_id": grid.id} if row_id else {}), "code": grid.code, "name": grid.name, "grid_type": grid.grid_type, "households": grid.households,
            "community_code": grid.community_code, "boundary": grid.boundary,
            "effective_from": grid.effective_from.isoformat()}


def _filing(kind: str, grid_code: str, payload: dict, now: datetime, by: str) -> Filing:
    return Filing(kind=kind, grid_code=grid_code, payload=payload, created_at=now, created_by=by)


def _beijing_date(moment: datetime) -> date:
    return moment.astimezone(_BEIJING).date()
