"""The grid registry (条例 §7–§11): divisions, grids, grid workers, units and the filings sent to the city.

Administrators keep the registry in spreadsheets, so it comes in and goes out as CSV or XLSX with the same
columns both ways. An import is all or nothing: every problem is reported with the row number the
spreadsheet shows (header = row 1), because the person fixing it should fix everything in one round, and a
half-imported sheet would leave grids without their workers. An import adds; a row already registered
exactly as written is left alone (so importing the same sheet twice, or re-importing an export, changes
nothing), and a row that contradicts the registry is refused: grids change only through `recode_grid`,
`redraw_grid`, `merge_grids` and `split_grid`, which keep the old rows, and every grid change is filed with the
city (条例 §7).

A grid's line of descent: each new row's `replaces_id` names the row it took over from (for a split, every part
names the old grid). A merged row has several predecessors but one `replaces_id` (the kept code's row, or the
first source), so the merge filing, which lists every source row, supplies the others. Cases are never
rewritten: they keep the code they were reported in, and `grid(code, on_date)` says what it meant then.

Dates: a row is in force on [effective_from, effective_to); `effective_to` is NULL while it is current.
Registry dates are calendar dates in Beijing, as the administrators' documents give them.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rules.grid_codes import (
    GRID_TYPES, GridCode, InvalidDivisionCode, InvalidGridCode, division_level,
    household_warning,
)
from rules.levels import LEVELS
from rules.routing import load_units
from rules.tables import TableProblem, decode_csv_records, row_reporter, table_rows

from .clock import SYSTEM_CLOCK, Clock
from .errors import Conflict, EngineError, NotFound
from .models import Division, Filing, Grid, GridWorker, UnitRow
from .spreadsheets import csv_bytes, read_xlsx_records, xlsx_bytes

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


class RegistryStore:
    def __init__(self, sessions, readers, *, default_supervision_phone: str = DEFAULT_SUPERVISION_PHONE):
        self._sessions = sessions
        self._readers = readers
        self.default_supervision_phone = default_supervision_phone

    # ---- import -------------------------------------------------------------------------------------------

    def import_csv(self, kind: str, data: bytes, by: str, *, on_date: date | None = None,
                   clock: Clock | None = None, file: str | None = None) -> ImportResult:
        return self._import(kind, file or f"{kind}.csv", data, decode_csv_records, by, on_date, clock)

    def import_xlsx(self, kind: str, data: bytes, by: str, *, on_date: date | None = None,
                    clock: Clock | None = None, file: str | None = None) -> ImportResult:
        return self._import(kind, file or f"{kind}.xlsx", data, read_xlsx_records, by, on_date, clock)

    def _import(self, kind, file, data, read_records, by, on_date, clock) -> ImportResult:
        _check_kind(kind)
        problems: list[TableProblem] = []
        records = read_records(file, _capped(file, data), problems)
        now = (clock or SYSTEM_CLOCK).now()
        on_date = on_date or _beijing_date(now)
        rows = None if records is None else table_rows(file, records, COLUMNS[kind], problems,
                                                        required=_REQUIRED[kind])
        # A list: the checks read the rows more than once.
        rows = [] if rows is None else list(rows)
        check = {"divisions": _check_divisions, "grids": _check_grids, "workers": _check_workers}[kind]
        try:
            with self._sessions() as session, session.begin():
                added, unchanged = check(session, file, rows, on_date, problems)
                if problems:
                    raise RegistryImportError(kind, problems)
                for row in added:
                    row.created_at, row.created_by = now, by
                    session.add(row)
                    if isinstance(row, Grid):
                        session.add(_filing("grid_created", row.code, _grid_payload(row), now, by))
        except IntegrityError:  # another import or change committed the same rows first
            raise Conflict(f"the {kind} changed while importing; nothing was imported, run the import again") \
                from None
        return ImportResult(kind, len(added), unchanged)

    # ---- export -------------------------------------------------------------------------------------------

    def export_rows(self, kind: str) -> tuple[tuple[str, ...], list[list]]:
        """The current rows of `kind` as an import reads them (households as a number, the rest as text)."""
        _check_kind(kind)
        with self._readers() as session:
            if kind == "divisions":
                rows = [[d.code, d.name, d.level, d.parent_code or "", d.supervision_phone or ""]
                        for d in session.scalars(sa.select(Division).order_by(Division.code))]
            elif kind == "grids":
                rows = [[g.code, g.name, g.grid_type, g.households, g.community_code, g.boundary,
                         g.effective_from.isoformat()]
                        for g in session.scalars(sa.select(Grid).where(Grid.effective_to.is_(None))
                                                 .order_by(Grid.code))]
            else:
                rows = [[w.grid_code, w.name, w.phone, w.employment, w.effective_from.isoformat()]
                        for w in session.scalars(sa.select(GridWorker).where(GridWorker.effective_to.is_(None))
                                                 .order_by(GridWorker.grid_code, GridWorker.employment,
                                                           GridWorker.name, GridWorker.id))]
        return COLUMNS[kind], rows

    def export_csv(self, kind: str) -> bytes:
        return csv_bytes(*self.export_rows(kind))

    def export_xlsx(self, kind: str) -> bytes:
        columns, rows = self.export_rows(kind)
        return xlsx_bytes(kind, columns, rows, wide=("boundary",))

    # ---- changes to a grid ----------------------------------------------------------------------------------

    def recode_grid(self, old_code: str, new_code: str, by: str, on_date: date, *, reason: str = "",
                    clock: Clock | None = None) -> Grid:
        """Give a grid a new code from `on_date` (its community's division code changed, or it was numbered
        wrongly); its workers follow it. The old row and the workers' old rows stay as history."""
        parsed = _parse_grid_code(new_code)
        now = (clock or SYSTEM_CLOCK).now()
        with self._sessions() as session, session.begin():
            old = _current_grid(session, old_code, lock=True)
            if new_code == old_code:
                raise RegistryError(f"grid {old_code} already has that code")
            _not_before(old, on_date)
            taken = list(session.scalars(sa.select(Grid.effective_to).where(Grid.code == new_code)))
            if taken:
                raise RegistryError(f"code {new_code} is {'in use' if None in taken else 'retired'}; a code names "
                                    f"one area and is never given to another (条例 §7)")
            if session.get(Division, parsed.community_code) is None:
                raise RegistryError(f"unknown parent division {parsed.community_code}: register the community "
                                    f"before giving grids its code")
            old.effective_to = on_date
            new = Grid(code=new_code, name=old.name, grid_type=parsed.grid_type, households=old.households,
                       community_code=parsed.community_code, boundary=old.boundary, effective_from=on_date,
                       replaces_id=old.id, created_at=now, created_by=by)
            session.add(new)
            moved = []
            workers = list(session.scalars(_current_workers(old_code)))
            _workers_not_before(workers, on_date)
            for worker in workers:
                worker.effective_to = on_date
                session.add(GridWorker(name=worker.name, phone=worker.phone, employment=worker.employment,
                                       grid_code=new_code, effective_from=on_date, created_at=now, created_by=by))
                moved.append(worker.name)
            session.add(_filing("grid_recoded", new_code, {
                "old_code": old_code, "new_code": new_code, "effective_from": on_date.isoformat(),
                "name": old.name, "workers_moved": moved, "reason": reason}, now, by))
        return new

    def redraw_grid(self, code: str, households: int, boundary: str, by: str, on_date: date, *,
                    name: str | None = None, reason: str = "", clock: Clock | None = None) -> Grid:
        """The grid's area changes from `on_date` under the same code (条例 §7 调整)."""
        if isinstance(households, bool) or not isinstance(households, int) or households < 0:
            raise RegistryError(f"households must be a whole number 0 or more, not {households!r}")
        if not (boundary or "").strip():
            raise RegistryError("the boundary description is empty; a redraw has to say where the grid now lies")
        if name is not None and not name.strip():
            raise RegistryError("the grid name is empty")
        now = (clock or SYSTEM_CLOCK).now()
        with self._sessions() as session, session.begin():
            old = _current_grid(session, code, lock=True)
            _not_before(old, on_date)
            old.effective_to = on_date
            session.flush()  # the current-code index allows one open row: close this one before opening the next
            new = Grid(code=code, name=(name or old.name).strip(), grid_type=old.grid_type, households=households,
                       community_code=old.community_code, boundary=boundary.strip(), effective_from=on_date,
                       replaces_id=old.id, created_at=now, created_by=by)
            session.add(new)
            session.add(_filing("grid_redrawn", code, {
                "code": code, "effective_from": on_date.isoformat(), "reason": reason,
                "before": {"name": old.name, "households": old.households, "boundary": old.boundary},
                "after": {"name": new.name, "households": new.households, "boundary": new.boundary},
                "household_warning": household_warning(new.grid_type, households)}, now, by))
        return new

    def merge_grids(self, codes: list[str], into_code: str, name: str | None, households: int | None,
                    boundary: str, by: str, on_date: date, reason: str, *,
                    clock: Clock | None = None) -> GridChange:
        """Join neighbouring grids of one community into one from `on_date` (条例 §7 调整). The merged grid may
        keep one of their codes or take a new one; the others' workers move to it; one filing names every
        source. `name` defaults to the kept grid's, `households` to the sources' sum."""
        codes = list(codes or [])
        if len(set(codes)) < 2:
            raise RegistryError(f"a merge joins 2 grids or more; given {len(set(codes))}")
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise RegistryError(f"grid {', '.join(twice)} is listed more than once")
        parsed = _parse_grid_code(into_code)
        _check_reason(reason)
        boundary = _required_text(boundary, "boundary", "say where the merged grid lies")
        if households is not None:
            _check_households(households)
        if name is not None:
            name = _required_text(name, "name", "give the merged grid a name")
        elif into_code not in codes:
            raise RegistryError(f"the merged grid takes the new code {into_code}; give it a name")
        now = (clock or SYSTEM_CLOCK).now()
        with self._sessions() as session, session.begin():
            sources = [_current_grid(session, code, lock=True) for code in codes]
            _one_community(parsed, [(g.code, g.community_code) for g in sources], "merge")
            for grid in sources:
                _may_become(grid.grid_type, parsed.grid_type, grid.code, into_code, "merged into")
                _not_before(grid, on_date)
            if into_code not in codes:
                _code_is_free(session, into_code)
            kept = next((g for g in sources if g.code == into_code), None)
            moving = [w for g in sources if g.code != into_code for w in session.scalars(_current_workers(g.code))]
            staying = list(session.scalars(_current_workers(into_code))) if kept else []
            _workers_not_before(moving, on_date)
            for grid in sources:
                grid.effective_to = on_date
            session.flush()   # the kept code's open row must close before its successor opens
            merged = Grid(code=into_code, name=name or kept.name, grid_type=parsed.grid_type,
                          households=sum(g.households for g in sources) if households is None else households,
                          community_code=parsed.community_code, boundary=boundary, effective_from=on_date,
                          replaces_id=(kept or sources[0]).id, created_at=now, created_by=by)
            session.add(merged)
            moved = _join_workers(session, staying, moving, into_code, on_date, now, by)
            _flush_or_conflict(session, "merge")
            warnings = _size_warnings([merged]) + _staffing_warnings(session, [merged])
            filing = _filing("grid_merged", into_code, {
                "sources": [_grid_payload(g, row_id=True) for g in sources],
                "result": _grid_payload(merged, row_id=True),
                "effective_from": on_date.isoformat(), "reason": reason.strip(),
                "workers_moved": moved, "warnings": warnings}, now, by)
            session.add(filing)
            _flush_or_conflict(session, "merge")
        return GridChange("grid_merged", sources, [merged], moved, [], warnings, filing.id)

    def split_grid(self, code: str, parts: list[dict], by: str, on_date: date, reason: str, *,
                   workers: dict[str, str] | None = None, clock: Clock | None = None) -> GridChange:
        """Divide a grid into ≥2 grids of its community from `on_date` (条例 §7 调整). Each part is
        {code, name, households, boundary}; one part may keep the old code. `workers` maps a current worker
        (by name, or by phone where two share a name) to the part they serve; a worker not mapped stays with
        the part that keeps the old code, or, when none does, leaves the grid and is reported unassigned."""
        parts = list(parts or [])
        if len(parts) < 2:
            raise RegistryError(f"a split makes 2 grids or more; given {len(parts)} part(s)")
        _check_reason(reason)
        old_parsed = _parse_grid_code(code)
        checked = [_check_part(index, part) for index, part in enumerate(parts, start=1)]
        part_codes = [p["code"] for p in checked]
        twice = sorted({c for c in part_codes if part_codes.count(c) > 1})
        if twice:
            raise RegistryError(f"part code {', '.join(twice)} is given to more than one part")
        mapping = dict(workers or {})
        strays = sorted({part for part in mapping.values() if part not in part_codes})
        if strays:
            raise RegistryError(f"workers are assigned to {', '.join(strays)}, which is not one of the parts "
                                f"({', '.join(part_codes)})")
        now = (clock or SYSTEM_CLOCK).now()
        with self._sessions() as session, session.begin():
            old = _current_grid(session, code, lock=True)
            _one_community(old_parsed, [(p["code"], p["parsed"].community_code) for p in checked], "split")
            for part in checked:
                _may_become(old.grid_type, part["parsed"].grid_type, code, part["code"], "split into")
                if part["code"] != code:
                    _code_is_free(session, part["code"])
            _not_before(old, on_date)
            current = list(session.scalars(_current_workers(code)))
            assignment = _assign_workers(current, mapping, code)
            keeps_code = code in part_codes
            for worker in current:
                assignment.setdefault(worker.id, code if keeps_code else None)
            leaving = [w for w in current if assignment[w.id] != code]
            _workers_not_before(leaving, on_date)
            old.effective_to = on_date
            session.flush()   # a part keeping the code opens after the old row closes
            opened = []
            for part in checked:
                row = Grid(code=part["code"], name=part["name"], grid_type=part["parsed"].grid_type,
                           households=part["households"], community_code=part["parsed"].community_code,
                           boundary=part["boundary"], effective_from=on_date, replaces_id=old.id,
                           created_at=now, created_by=by)
                session.add(row)
                opened.append(row)
            moved, unassigned = [], []
            for worker in leaving:
                target = assignment[worker.id]
                _close_assignment(worker, on_date)
                if target is None:
                    unassigned.append(_worker_note(worker, code, None))
                    continue
                session.add(_reassigned(worker, target, on_date, now, by))
                moved.append(_worker_note(worker, code, target))
            _flush_or_conflict(session, "split")
            warnings = _size_warnings(opened) + _staffing_warnings(session, opened)
            filing = _filing("grid_split", code, {
                "source": _grid_payload(old, row_id=True),
                "parts": [_grid_payload(row, row_id=True) for row in opened],
                "effective_from": on_date.isoformat(), "reason": reason.strip(),
                "households_before": old.households, "households_after": sum(r.households for r in opened),
                "workers_moved": moved, "workers_unassigned": unassigned, "warnings": warnings}, now, by)
            session.add(filing)
            _flush_or_conflict(session, "split")
        return GridChange("grid_split", [old], opened, moved, unassigned, warnings, filing.id)

    # ---- reading ------------------------------------------------------------------------------------------

    def grid(self, code: str, on_date: date | None = None) -> Grid:
        """The grid `code` names now, or as it was drawn on `on_date` (what a case reported then refers to)."""
        with self._readers() as session:
            if on_date is None:
                return _current_grid(session, code)
            found = session.scalar(sa.select(Grid).where(Grid.code == code, _in_force(Grid, on_date)))
            if found is not None:
                return found
            spans = [f"{g.effective_from} to {g.effective_to or 'now'}" for g in session.scalars(
                sa.select(Grid).where(Grid.code == code).order_by(Grid.effective_from, Grid.id))]
        if not spans:
            raise NotFound(f"no grid {code} in the registry")
        raise NotFound(f"grid {code} was not in force on {on_date}; it was in force {'; '.join(spans)}")

    def grid_history(self, code: str) -> list[Grid]:
        """The rows of `code` with every row before them (across recodes, merges, splits) and every row after
        them, in date order: how the area a code names came to be and what became of it."""
        return self.lineage(code).rows

    def lineage(self, code: str) -> Lineage:
        """`grid_history` with the filings that record each change."""
        with self._readers() as session:
            start = list(session.scalars(sa.select(Grid).where(Grid.code == code)))
            if not start:
                raise NotFound(f"no grid {code} in the registry")
            merged_from: dict[int, list[int]] = {}
            merged_into: dict[int, int] = {}
            for payload in session.scalars(sa.select(Filing.payload).where(Filing.kind == "grid_merged")):
                result = payload["result"]["row_id"]
                for source in payload["sources"]:
                    merged_from.setdefault(result, []).append(source["row_id"])
                    merged_into[source["row_id"]] = result

            def before(row: Grid) -> list[Grid]:
                ids = [i for i in [row.replaces_id, *merged_from.get(row.id, [])] if i is not None]
                return [session.get(Grid, i) for i in dict.fromkeys(ids)]

            def after(row: Grid) -> list[Grid]:
                found = list(session.scalars(sa.select(Grid).where(Grid.replaces_id == row.id)))
                if row.id in merged_into:
                    found.append(session.get(Grid, merged_into[row.id]))
                return found

            rows = {row.id: row for row in start}
            for step in (before, after):
                frontier, seen = list(start), {row.id for row in start}
                while frontier:
                    for nxt in step(frontier.pop()):
                        if nxt.id not in seen:
                            seen.add(nxt.id)
                            rows[nxt.id] = nxt
                            frontier.append(nxt)
            ordered = sorted(rows.values(), key=lambda g: (g.effective_from, g.id))
            codes = {g.code for g in ordered}
            changes = [f for f in self._filings(session) if codes & _codes_in(f)]
        return Lineage(code, ordered, changes)

    def workers(self, grid_code: str | None = None, *, current: bool = True) -> list[GridWorker]:
        query = sa.select(GridWorker).order_by(GridWorker.grid_code, GridWorker.effective_from, GridWorker.id)
        if grid_code is not None:
            query = query.where(GridWorker.grid_code == grid_code)
        if current:
            query = query.where(GridWorker.effective_to.is_(None))
        with self._readers() as session:
            return list(session.scalars(query))

    def filings(self, grid_code: str | None = None) -> list[Filing]:
        """Filings with the city, oldest first; with `grid_code`, those naming it in any role (created,
        redrawn, recoded from or to, merged from or into, split from or into)."""
        with self._readers() as session:
            return self._filings(session, grid_code)

    @staticmethod
    def _filings(session, grid_code: str | None = None) -> list[Filing]:
        query = sa.select(Filing).order_by(Filing.id)
        if grid_code is None:
            return list(session.scalars(query))
        # The code the filing is indexed by, plus the few kinds that name other codes in their payload.
        query = query.where(sa.or_(Filing.grid_code == grid_code, Filing.kind.in_(_MULTI_CODE_KINDS)))
        return [f for f in session.scalars(query) if grid_code in _codes_in(f)]

    def division_name(self, code: str) -> str:
        with self._readers() as session:
            division = session.get(Division, code)
            if division is None:
                raise RegistryError(f"no division {code}")
            return division.name

    def units(self) -> list[UnitRow]:
        with self._readers() as session:
            return list(session.scalars(sa.select(UnitRow).order_by(UnitRow.code)))

    def count(self, kind: str) -> int:
        """Current rows of `kind`."""
        _check_kind(kind)
        model = {"divisions": Division, "grids": Grid, "workers": GridWorker}[kind]
        query = sa.select(sa.func.count()).select_from(model)
        if model is not Division:
            query = query.where(model.effective_to.is_(None))
        with self._readers() as session:
            return session.scalar(query)

    # ---- checks -------------------------------------------------------------------------------------------

    def grids_without_full_time_worker(self, on_date: date | None = None) -> list[dict]:
        """条例 §10: the grids in force on `on_date` (default today) with no full-time worker on that day."""
        on_date = on_date or _beijing_date(SYSTEM_CLOCK.now())
        full_time = (sa.select(GridWorker.id)
                     .where(GridWorker.grid_code == Grid.code, GridWorker.employment == "full_time",
                            _in_force(GridWorker, on_date)))
        part_time = (sa.select(sa.func.count(GridWorker.id))
                     .where(GridWorker.grid_code == Grid.code, GridWorker.employment == "part_time",
                            _in_force(GridWorker, on_date)).scalar_subquery())
        query = (sa.select(Grid.code, Grid.name, Grid.community_code, part_time)
                 .where(_in_force(Grid, on_date), ~sa.exists(full_time)).order_by(Grid.code))
        with self._readers() as session:
            return [{"code": code, "name": name, "community_code": community, "part_time_workers": count}
                    for code, name, community, count in session.execute(query)]

    def household_warnings(self) -> list[dict]:
        """Current urban grids outside the 300–500 households of 条例 §8, with the warning to show."""
        with self._readers() as session:
            grids = session.scalars(sa.select(Grid).where(Grid.effective_to.is_(None), Grid.grid_type == "U")
                                    .order_by(Grid.code))
            found = [(g, household_warning(g.grid_type, g.households)) for g in grids]
        return [{"code": g.code, "name": g.name, "households": g.households, "warning": warning}
                for g, warning in found if warning]

    # ---- the public notice (条例 §11) --------------------------------------------------------------------

    def public_notice(self, grid_code: str) -> dict:
        """What is posted at the grid: its name, area, workers' names and phones, duties and a supervision
        phone. Built field by field from an allow-list: nothing else about a worker leaves the registry."""
        with self._readers() as session:
            grid = _current_grid(session, grid_code)
            workers = list(session.scalars(_current_workers(grid_code)))
            supervision = self._supervision_phone(session, grid.community_code)
        full_time_first = sorted(workers, key=lambda w: (w.employment != "full_time", w.effective_from, w.id))
        return {
            "grid_code": grid.code,
            "grid_name": grid.name,
            "grid_type": GRID_TYPES[grid.grid_type],
            "area": grid.boundary,
            "workers": [{"name": w.name, "role": EMPLOYMENT[w.employment], "phone": w.phone}
                        for w in full_time_first],
            "duties": DUTIES,
            "supervision_phone": supervision,
        }

    def public_notice_csv(self, codes: Iterable[str]) -> bytes:
        rows = []
        for code in codes:
            notice = self.public_notice(code)
            common = (notice["grid_code"], notice["grid_name"], notice["area"])
            tail = (notice["duties"], notice["supervision_phone"])
            if not notice["workers"]:
                rows.append([*common, "", "", "", *tail])
            for worker in notice["workers"]:
                rows.append([*common, worker["name"], worker["role"], worker["phone"], *tail])
        return csv_bytes(NOTICE_COLUMNS, rows)

    def public_notice_html(self, grid_code: str) -> str:
        """A page to print and post (A4); self-contained, since it is often printed from an offline office PC."""
        notice = self.public_notice(grid_code)
        e = html.escape
        workers = "\n".join(f"      <tr><td>{e(w['name'])}</td><td>{e(w['role'])}</td><td>{e(w['phone'])}</td></tr>"
                            for w in notice["workers"]) or '      <tr><td colspan="3">（待配备）</td></tr>'
        return _NOTICE_PAGE.format(
            title=e(notice["grid_name"]), code=e(notice["grid_code"]), type=e(notice["grid_type"]),
            area=e(notice["area"]), workers=workers, duties=e(notice["duties"]),
            supervision=e(notice["supervision_phone"]))

    def _supervision_phone(self, session, division_code: str | None) -> str:
        seen = set()
        while division_code and division_code not in seen:
            seen.add(division_code)
            division = session.get(Division, division_code)
            if division is None:
                break
            if division.supervision_phone:
                return division.supervision_phone
            division_code = division.parent_code
        return self.default_supervision_phone

    # ---- levels ---------------------------------------------------------------------------------------------

    @staticmethod
    def agency_for(grid_code: str, level: str) -> str:
        """The division whose grid agency a worker of `grid_code` reports to at `level` (逐级上报, 条例 §17):
        read from the code's segments, so it needs no lookup and holds for retired codes too."""
        parsed = _parse_grid_code(grid_code)
        if level not in LEVELS:
            raise RegistryError(f"unknown agency level {level!r}; known: {', '.join(LEVELS)}")
        return {"community": parsed.community_code, "township": parsed.township_code,
                "county": parsed.county_code, "city": parsed.province + parsed.city + "00"}[level]

    # ---- units and the sample ---------------------------------------------------------------------------

    def seed_units(self) -> int:
        """Bring the units table in line with rules/data/units.csv; returns how many rows changed."""
        units = load_units()
        changed = 0
        with self._sessions() as session, session.begin():
            for unit in units.values():
                row = session.get(UnitRow, unit.code)
                if row is None:
                    session.add(UnitRow(code=unit.code, name=unit.name, kind=unit.kind, levels=list(unit.levels)))
                    changed += 1
                elif (row.name, row.kind, list(row.levels)) != (unit.name, unit.kind, list(unit.levels)):
                    row.name, row.kind, row.levels = unit.name, unit.kind, list(unit.levels)
                    changed += 1
        return changed

    def load_sample(self, by: str, *, clock: Clock | None = None) -> list[ImportResult]:
        """The fictional county 410702 红旗区 shipped in engine/sample_registry, and the units; idempotent."""
        self.seed_units()
        folder = resources.files(__package__).joinpath("sample_registry")
        return [self.import_csv(kind, folder.joinpath(f"{kind}.csv").read_bytes(), by, clock=clock,
                                file=f"sample_registry/{kind}.csv")
                for kind in _SAMPLE]


# ---- reading sheets ----------------------------------------------------------------------------------------

def _capped(file: str, data: bytes) -> bytes:
    if len(data) > MAX_UPLOAD_BYTES:
        raise RegistryImportError(file, [TableProblem(file, None, None, f"{len(data)} bytes; the limit is "
                                                                        f"{MAX_UPLOAD_BYTES}")])
    return data


# ---- checking rows -------------------------------------------------------------------------------------------

def _check_divisions(session, file, rows, on_date, problems):
    existing = {d.code: d for d in session.scalars(sa.select(Division))}
    in_file = {cells["code"]: row for row, cells in rows}
    seen: dict[str, int] = {}
    added, unchanged = [], 0
    for row, cells in rows:
        problem = row_reporter(problems, file, row)
        before = len(problems)
        code, name, phone = cells["code"], cells["name"], cells["supervision_phone"]
        level = _parsed(division_level, code, problem, "code")
        if level is not None:
            if cells["level"] and cells["level"] != level:
                problem("level", f"{cells['level']!r} does not match the code: a {len(code)}-digit code is a {level}")
            parent = _parent_division(code)
            if cells["parent_code"] and cells["parent_code"] != parent:
                problem("parent_code", f"{cells['parent_code']} is not the division above {code}; it is {parent}")
            elif level != "county" and parent not in existing and parent not in in_file:
                problem("parent_code", f"unknown parent division {parent}: register it (in this sheet or before)")
            if code in seen:
                problem("code", f"duplicate: {code} is already in row {seen[code]}")
        if not name:
            problem("name", "empty")
        if phone and not _PHONE.match(phone):
            problem("supervision_phone", f"{phone!r} is not a phone number")
        seen.setdefault(code, row)
        if len(problems) > before:
            continue
        current = existing.get(code)
        if current is not None:
            if (current.name, current.supervision_phone or "") == (name, phone):
                unchanged += 1
            else:
                problem("code", f"{code} is registered as {current.name} with supervision phone "
                                f"{current.supervision_phone or '(none)'}; an import does not change a division")
            continue
        added.append(Division(code=code, name=name, level=level, parent_code=_parent_division(code),
                              supervision_phone=phone or None))
    return added, unchanged


def _check_grids(session, file, rows, on_date, problems):
    divisions = dict(session.execute(sa.select(Division.code, Division.level)).all())
    by_code: dict[str, list[Grid]] = {}
    for grid in session.scalars(sa.select(Grid).order_by(Grid.effective_from)):
        by_code.setdefault(grid.code, []).append(grid)
    seen: dict[str, int] = {}
    added, unchanged = [], 0
    for row, cells in rows:
        problem = row_reporter(problems, file, row)
        before = len(problems)
        code, name, boundary = cells["code"], cells["name"], cells["boundary"]
        parsed = _parsed(GridCode.parse, code, problem, "code")
        if parsed is not None:
            if cells["grid_type"] and cells["grid_type"] != parsed.grid_type:
                problem("grid_type", f"{cells['grid_type']!r} does not match the code's type letter "
                                     f"{parsed.grid_type}")
            if cells["community_code"] and cells["community_code"] != parsed.community_code:
                problem("community_code", f"{cells['community_code']} does not match the code's community "
                                          f"{parsed.community_code}")
            if divisions.get(parsed.community_code) != "community":
                problem("code", f"unknown parent division {parsed.community_code}: import the community in "
                                f"divisions first")
            if code in seen:
                problem("code", f"duplicate: {code} is already in row {seen[code]}")
            seen.setdefault(code, row)
        if not name:
            problem("name", "empty")
        if not boundary:
            problem("boundary", "empty; describe the area, e.g. 东至建设路，南至人民路…")
        households = _whole_number(cells["households"], problem, "households")
        effective_from = _date(cells["effective_from"], problem, "effective_from") or on_date
        if len(problems) > before:
            continue
        history = by_code.get(code, [])
        current = next((g for g in history if g.effective_to is None), None)
        if current is not None:
            if (current.name, current.households, current.boundary) == (name, households, boundary):
                unchanged += 1
            else:
                problem("code", f"{code} is registered since {current.effective_from} as {current.name} "
                                f"({current.households} households) with another area; change a grid with "
                                f"redraw or recode, which keep its history")
            continue
        if history:
            problem("code", f"{code} was retired on {history[-1].effective_to}; a code is never reused for "
                            f"another area (条例 §7)")
            continue
        added.append(Grid(code=code, name=name, grid_type=parsed.grid_type, households=households,
                          community_code=parsed.community_code, boundary=boundary, effective_from=effective_from))
    return added, unchanged


def _check_workers(session, file, rows, on_date, problems):
    grids = set(session.scalars(sa.select(Grid.code).where(Grid.effective_to.is_(None))))
    existing = {(w.grid_code, w.name, w.phone): w for w in session.scalars(
        sa.select(GridWorker).where(GridWorker.effective_to.is_(None)))}
    seen: dict[tuple, int] = {}
    added, unchanged = [], 0
    for row, cells in rows:
        problem = row_reporter(problems, file, row)
        before = len(problems)
        grid_code, name, phone = cells["grid_code"], cells["name"], cells["phone"]
        if not grid_code:
            problem("grid_code", "empty")
        elif grid_code not in grids and _parsed(GridCode.parse, grid_code, problem, "grid_code") is not None:
            problem("grid_code", f"unknown worker grid {grid_code}: no grid with that code is in force")
        if not name:
            problem("name", "empty")
        elif len(name) > 100:
            problem("name", "longer than 100 characters")
        if not phone:
            problem("phone", "empty; the phone is posted on the grid's notice (条例 §11)")
        elif not _PHONE.match(phone):
            problem("phone", f"{phone!r} is not a phone number")
        employment = cells["employment"]
        employment = _EMPLOYMENT_WORDS.get(employment, employment)
        if employment not in EMPLOYMENT:
            problem("employment", f"{cells['employment']!r} is neither full_time (专职) nor part_time (兼职)")
        effective_from = _date(cells["effective_from"], problem, "effective_from") or on_date
        key = (grid_code, name, phone)
        if key in seen:
            problem("name", f"duplicate: {name} ({phone}) in grid {grid_code} is already in row {seen[key]}")
        seen.setdefault(key, row)
        if len(problems) > before:
            continue
        current = existing.get(key)
        if current is not None:
            if current.employment == employment:
                unchanged += 1
            else:
                problem("employment", f"{name} is registered in {grid_code} as {current.employment}; an import "
                                      f"does not change an assignment")
            continue
        added.append(GridWorker(name=name, phone=phone, employment=employment, grid_code=grid_code,
                                effective_from=effective_from))
    return added, unchanged


def _parsed(parse, text: str, problem, column: str):
    """parse(text), or None when the code is malformed, each thing wrong with it reported on its own."""
    try:
        return parse(text)
    except (InvalidDivisionCode, InvalidGridCode) as exc:
        for reason in exc.problems:
            problem(column, reason)
        return None


def _whole_number(text: str, problem, column: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        problem(column, f"{text!r} is not a whole number 0 or more" if text else "empty")
        return None
    return int(text)


def _date(text: str, problem, column: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problem(column, f"{text!r} is not a date YYYY-MM-DD")
        return None


# ---- helpers ---------------------------------------------------------------------------------------------

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


def _check_reason(reason: str) -> None:
    # The city reviews filings; a change it cannot understand the reason for comes back.
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("give the reason for the change; it is filed with the city (条例 §7)")


def _required_text(value, what: str, hint: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"the {what} is empty; {hint}")
    return value.strip()


def _check_households(households) -> int:
    if isinstance(households, bool) or not isinstance(households, int) or households < 0:
        raise RegistryError(f"households must be a whole number 0 or more, not {households!r}")
    return households


def _check_part(index: int, part) -> dict:
    if not isinstance(part, dict):
        raise RegistryError(f"part {index}: give code, name, households and boundary, not {part!r}")
    unknown = sorted(set(part) - {"code", "name", "households", "boundary"})
    if unknown:
        raise RegistryError(f"part {index}: unknown field(s) {', '.join(map(str, unknown))}; a part has code, "
                            f"name, households and boundary")
    code = part.get("code")
    try:
        parsed = _parse_grid_code(code)
        households = _check_households(part.get("households"))
        name = _required_text(part.get("name"), "name", "every part needs a name")
        boundary = _required_text(part.get("boundary"), "boundary", "say where the part lies")
    except RegistryError as exc:
        raise RegistryError(f"part {index} ({code}): {exc}") from None
    return {"code": code, "parsed": parsed, "name": name, "households": households, "boundary": boundary}


def _one_community(target: GridCode, codes: list[tuple[str, str]], change: str) -> None:
    """A grid lies in one community or village: its code starts with that division's code (rules/grid_codes)."""
    for code, community in codes:
        if community != target.community_code:
            raise RegistryError(
                f"{code} lies in community {community} and {target} in {target.community_code}: a {change} cannot "
                f"cross communities, because a grid lies within one community or village and its code begins "
                f"with that division's code (条例 §7 统一编码); if the boundary between the communities moved, "
                f"recode the grids into one community first")


def _may_become(before: str, after: str, before_code: str, after_code: str, verb: str) -> None:
    """条例 §8: urban community grids are drawn from residential blocks, rural grids from villagers' groups,
    so one grid is never both. An exclusive grid is a site that §8 lets stand on its own ("可以单独设置"),
    so a site may be folded into the ordinary grid around it (merge) or carved out of it (split)."""
    if before == after:
        return
    folded = verb == "merged into" and before == "E"
    carved = verb == "split into" and after == "E"
    if folded or carved:
        return
    raise RegistryError(
        f"{before_code} is a {GRID_TYPES[before]} and cannot be {verb} {after_code}, a {GRID_TYPES[after]}: "
        f"条例 §8 draws urban community grids from residential blocks and rural grids from villagers' groups, "
        f"and lets only an exclusive grid (专属网格) be folded into or carved out of an ordinary one; if the area "
        f"changed kind (村改社区), recode the grid to its new type first")


def _code_is_free(session, code: str) -> None:
    taken = list(session.scalars(sa.select(Grid.effective_to).where(Grid.code == code)))
    if taken:
        raise RegistryError(f"code {code} is {'in use' if None in taken else 'retired'}; a code names one area "
                            f"and is never given to another (条例 §7)")
    if session.get(Division, code[:12]) is None:
        raise RegistryError(f"unknown parent division {code[:12]}: register the community before giving grids "
                            f"its code")


def _workers_not_before(workers: Iterable[GridWorker], on_date: date) -> None:
    for worker in workers:
        if on_date < worker.effective_from:
            raise RegistryError(f"{worker.name} serves grid {worker.grid_code} from {worker.effective_from}; a "
                                f"change cannot move them before that ({on_date})")


def _assign_workers(current: list[GridWorker], mapping: dict, code: str) -> dict[int, str]:
    """worker row id → part code, from a mapping keyed by a worker's name or phone."""
    assigned: dict[int, str] = {}
    names = "、".join(w.name for w in current) or "none"
    for key, part in mapping.items():
        matches = [w for w in current if key in (w.name, w.phone)]
        if not matches:
            raise RegistryError(f"{key} is not a current worker of grid {code}; its workers are: {names}")
        if len(matches) > 1:
            raise RegistryError(f"grid {code} has {len(matches)} workers called {key}; name them by phone")
        worker = matches[0]
        if assigned.get(worker.id, part) != part:
            raise RegistryError(f"{worker.name} is assigned to both {assigned[worker.id]} and {part}")
        assigned[worker.id] = part
    return assigned


def _close_assignment(worker: GridWorker, on_date: date) -> None:
    worker.effective_to = on_date


def _reassigned(worker: GridWorker, grid_code: str, on_date: date, now: datetime, by: str,
                employment: str | None = None) -> GridWorker:
    return GridWorker(name=worker.name, phone=worker.phone, employment=employment or worker.employment,
                      grid_code=grid_code, effective_from=on_date, created_at=now, created_by=by)


def _worker_note(worker: GridWorker, from_code: str, to_code: str | None) -> dict:
    # Names and roles only: the filing goes to the city, phones stay in the registry (条例 §18).
    return {"name": worker.name, "employment": worker.employment, "from": from_code, "to": to_code}


def _join_workers(session, staying: list[GridWorker], moving: list[GridWorker], into_code: str, on_date: date,
                  now: datetime, by: str) -> list[dict]:
    """Move the merged grids' workers to `into_code`: one assignment per person, full-time if any of theirs was
    (a part-timer who helped in two of the grids serves the merged one once)."""
    serving = {(w.name, w.phone): w for w in staying}
    moved = []
    for worker in moving:
        _close_assignment(worker, on_date)
        key = (worker.name, worker.phone)
        present = serving.get(key)
        if present is None:
            serving[key] = _reassigned(worker, into_code, on_date, now, by)
            session.add(serving[key])
        elif worker.employment == "full_time" and present.employment != "full_time":
            if present.id is None:          # opened by this merge: not yet history, correct it
                present.employment = "full_time"
            else:
                _close_assignment(present, on_date)
                serving[key] = _reassigned(present, into_code, on_date, now, by, employment="full_time")
                session.add(serving[key])
        moved.append(_worker_note(worker, worker.grid_code, into_code))
    return moved


def _size_warnings(grids: list[Grid]) -> list[str]:
    found = [(g.code, household_warning(g.grid_type, g.households)) for g in grids]
    return [f"{code}: {warning}" for code, warning in found if warning]


def _staffing_warnings(session, grids: list[Grid]) -> list[str]:
    warnings = []
    for grid in grids:
        full_time = session.scalar(sa.select(sa.func.count(GridWorker.id)).where(
            GridWorker.grid_code == grid.code, GridWorker.employment == "full_time",
            GridWorker.effective_to.is_(None)))
        if not full_time:
            warnings.append(f"{grid.code}: no full-time worker; 条例 §10 requires at least one per grid")
    return warnings


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


_NOTICE_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title} 网格公示</title>
<style>
  @page {{ size: A4; margin: 18mm; }}
  body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimHei", sans-serif;
         color: #000; max-width: 180mm; margin: 0 auto; line-height: 1.6; }}
  h1 {{ text-align: center; font-size: 26pt; margin: 0 0 4mm; letter-spacing: 0.1em; }}
  .code {{ text-align: center; font-family: monospace; font-size: 11pt; margin-bottom: 6mm; }}
  h2 {{ font-size: 14pt; border-left: 2mm solid #b00; padding-left: 3mm; margin: 6mm 0 2mm; }}
  table {{ width: 100%; border-collapse: collapse; font-size: 13pt; }}
  th, td {{ border: 1px solid #000; padding: 2mm 3mm; text-align: left; }}
  th {{ background: #eee; }}
  .supervision {{ margin-top: 8mm; font-size: 15pt; font-weight: bold; text-align: center;
                  border: 2px solid #b00; padding: 3mm; }}
  @media print {{ th {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }} }}
</style>
</head>
<body>
  <h1>{title}</h1>
  <div class="code">网格编码 {code} · {type}</div>
  <h2>网格范围</h2>
  <p>{area}</p>
  <h2>网格员</h2>
  <table>
    <thead><tr><th>姓名</th><th>类别</th><th>联系电话</th></tr></thead>
    <tbody>
{workers}
    </tbody>
  </table>
  <h2>工作职责</h2>
  <p>{duties}</p>
  <div class="supervision">监督电话：{supervision}</div>
</body>
</html>
"""
