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

from __future__ import annotations

from datetime import date
from importlib import resources

import sqlalchemy as sa

from rules.grid_codes import (
    household_warning,
)
from rules.levels import LEVELS
from rules.routing import CITY_TABLE, load_units

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import NotFound
from engine.store.models import Division, Filing, Grid, GridWorker, UnitRow
from engine.registry.common import DEFAULT_SUPERVISION_PHONE, ImportResult, Lineage, RegistryError, _MULTI_CODE_KINDS, _SAMPLE, _beijing_date, _check_kind, _codes_in, _current_grid, _in_force, _parse_grid_code
from engine.registry.imports import RegistryImports
from engine.registry.changes import GridChanges
from engine.registry.notices import PublicNotices


class RegistryStore(RegistryImports, GridChanges, PublicNotices):
    """The registry: reading (a grid on a day, lineage, workers, filings, checks) here; import/export, changes
    and notices in their own modules."""

    def __init__(self, sessions, readers, *, default_supervision_phone: str = DEFAULT_SUPERVISION_PHONE):
        self._sessions = sessions
        self._readers = readers
        self.default_supervision_phone = default_supervision_phone

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

    @staticmethod
    def agency_for(grid_code: str, level: str) -> str:
        """The division whose grid agency a worker of `grid_code` reports to at `level` (逐级上报, 条例 §17):
        read from the code's segments, so it needs no lookup and holds for retired codes too."""
        parsed = _parse_grid_code(grid_code)
        if level not in LEVELS:
            raise RegistryError(f"unknown agency level {level!r}; known: {', '.join(LEVELS)}")
        return {"community": parsed.community_code, "township": parsed.township_code,
                "county": parsed.county_code, "city": parsed.province + parsed.city + "00"}[level]


    def seed_units(self) -> int:
        """Bring the units table in line with rules/data/units.csv and the sample city's units
        (rules/data/city/units.csv); returns how many rows changed."""
        units = {**load_units(), **load_units(CITY_TABLE.with_name("units.csv"))}
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
