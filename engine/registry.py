"""The grid registry (条例 §7–§11): divisions, grids, grid workers, units and the filings sent to the city.

Administrators keep the registry in spreadsheets, so it comes in and goes out as CSV or XLSX with the same
columns both ways. An import is all or nothing: every problem is reported with the row number the
spreadsheet shows (header = row 1), because the person fixing it should fix everything in one round, and a
half-imported sheet would leave grids without their workers. An import adds; a row already registered
exactly as written is left alone (so importing the same sheet twice, or re-importing an export, changes
nothing), and a row that contradicts the registry is refused: grids change only through `recode_grid` and
`redraw_grid`, which keep the old row, and every grid change is filed with the city (条例 §7).

Dates: a row is in force on [effective_from, effective_to); `effective_to` is NULL while it is current.
Registry dates are calendar dates in Beijing, as the administrators' documents give them.
"""
from __future__ import annotations

import csv
import html
import io
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
        return self._import(kind, file or f"{kind}.xlsx", data, _xlsx_records, by, on_date, clock)

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
        return _csv_bytes(*self.export_rows(kind))

    def export_xlsx(self, kind: str) -> bytes:
        from openpyxl import Workbook

        columns, rows = self.export_rows(kind)
        book = Workbook()
        sheet = book.active
        sheet.title = kind
        sheet.append(list(columns))
        for row in rows:
            sheet.append(row)
        # Codes and phones are text: left as General, Excel would turn 410702001001 into 4.10702E+11.
        for column in sheet.iter_cols(min_row=2):
            for cell in column:
                if isinstance(cell.value, str):
                    cell.number_format = "@"
        for index, name in enumerate(columns, start=1):
            sheet.column_dimensions[sheet.cell(1, index).column_letter].width = 40 if name == "boundary" else 18
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    # ---- changes to a grid ----------------------------------------------------------------------------------

    def recode_grid(self, old_code: str, new_code: str, by: str, on_date: date, *, reason: str = "",
                    clock: Clock | None = None) -> Grid:
        """Give a grid a new code from `on_date` (its community's division code changed, or it was numbered
        wrongly); its workers follow it. The old row and the workers' old rows stay as history."""
        parsed = _parse_grid_code(new_code)
        now = (clock or SYSTEM_CLOCK).now()
        with self._sessions() as session, session.begin():
            old = _current_grid(session, old_code)
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
            for worker in list(session.scalars(_current_workers(old_code))):
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
            old = _current_grid(session, code)
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

    # ---- reading ------------------------------------------------------------------------------------------

    def grid(self, code: str) -> Grid:
        with self._readers() as session:
            return _current_grid(session, code)

    def grid_history(self, code: str) -> list[Grid]:
        """Every row the grid now coded `code` went through, oldest first, across recodes."""
        with self._readers() as session:
            row = _current_grid(session, code)
            chain = [row]
            while row.replaces_id is not None:
                row = session.get(Grid, row.replaces_id)
                chain.append(row)
        return chain[::-1]

    def workers(self, grid_code: str | None = None, *, current: bool = True) -> list[GridWorker]:
        query = sa.select(GridWorker).order_by(GridWorker.grid_code, GridWorker.effective_from, GridWorker.id)
        if grid_code is not None:
            query = query.where(GridWorker.grid_code == grid_code)
        if current:
            query = query.where(GridWorker.effective_to.is_(None))
        with self._readers() as session:
            return list(session.scalars(query))

    def filings(self, grid_code: str | None = None) -> list[Filing]:
        query = sa.select(Filing).order_by(Filing.id)
        if grid_code is not None:
            query = query.where(Filing.grid_code == grid_code)
        with self._readers() as session:
            return list(session.scalars(query))

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
        return _csv_bytes(NOTICE_COLUMNS, rows)

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


def _xlsx_records(file: str, data: bytes, problems: list[TableProblem]) -> list[list[str]] | None:
    from openpyxl import load_workbook   # openpyxl parses the XML with defusedxml when it is installed

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # a zip that is not a workbook fails in many ways, all meaning the same thing
        problems.append(TableProblem(file, None, None, f"not an Excel workbook (.xlsx): {type(exc).__name__}"))
        return None
    try:
        sheet = book.worksheets[0]
        return [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))   # Excel stores 420 as 420.0
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


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


def _current_grid(session, code: str) -> Grid:
    grid = session.scalar(sa.select(Grid).where(Grid.code == code, Grid.effective_to.is_(None)))
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


def _grid_payload(grid: Grid) -> dict:
    return {"code": grid.code, "name": grid.name, "grid_type": grid.grid_type, "households": grid.households,
            "community_code": grid.community_code, "boundary": grid.boundary,
            "effective_from": grid.effective_from.isoformat()}


def _filing(kind: str, grid_code: str, payload: dict, now: datetime, by: str) -> Filing:
    return Filing(kind=kind, grid_code=grid_code, payload=payload, created_at=now, created_by=by)


def _beijing_date(moment: datetime) -> date:
    return moment.astimezone(_BEIJING).date()


def _csv_bytes(columns: Iterable[str], rows: list[list]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    # With the byte-order mark Excel opens the file as UTF-8 instead of GBK.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


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
