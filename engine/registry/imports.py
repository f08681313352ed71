"""Registry spreadsheets in and out: CSV/XLSX import (all or nothing, every problem by spreadsheet row) and export
with the same columns."""
from __future__ import annotations

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rules.grid_codes import (
    GridCode, InvalidDivisionCode, InvalidGridCode, division_level,
)
from rules.tables import TableProblem, decode_csv_records, row_reporter, table_rows

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Conflict
from engine.store.models import Division, Grid, GridWorker
from engine.registry.common import COLUMNS, EMPLOYMENT, ImportResult, MAX_UPLOAD_BYTES, RegistryImportError, _EMPLOYMENT_WORDS, _PHONE, _REQUIRED, _beijing_date, _check_kind, _filing, _grid_payload, _parent_division
from engine.registry.spreadsheets import csv_bytes, read_xlsx_records, xlsx_bytes


class RegistryImports:
    """Import and export, mixed into `RegistryStore`."""

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


def _capped(file: str, data: bytes) -> bytes:
    if len(data) > MAX_UPLOAD_BYTES:
        raise RegistryImportError(file, [TableProblem(file, None, None, f"{len(data)} bytes; the limit is "
                                                                        f"{MAX_UPLOAD_BYTES}")])
    return data



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
