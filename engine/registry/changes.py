"""Changes to grids (条例 §7–§8): recode, redraw, merge, split. Each closes the old rows, opens the next with
`replaces_id`, moves the workers' dated assignments and files one 备案 record naming every code."""
from __future__ import annotations

from __future__ import annotations

from datetime import date, datetime
from typing import Iterable

import sqlalchemy as sa

from rules.grid_codes import (
    GRID_TYPES, GridCode, household_warning,
)

from engine.clock import SYSTEM_CLOCK, Clock
from engine.store.models import Division, Grid, GridWorker
from engine.registry.common import GridChange, RegistryError, _current_grid, _current_workers, _filing, _flush_or_conflict, _grid_payload, _not_before, _parse_grid_code


class GridChanges:
    """Grid changes, mixed into `RegistryStore`."""

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


# ---- helpers ---------------------------------------------------------------------------------------------



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
