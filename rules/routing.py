"""Routing (分流交办, 条例 §16): which unit leads (主办) a matter and which assist (协办).

The table is data an administrator edits in a spreadsheet, `data/routing.csv`, one rule per
(sub-category, level, area), versioned by `data/routing.meta.json` like the time-limit table; the units it
names are listed once in `data/units.csv` (code, Chinese name, linkage department or service unit, and the
agency levels that may dispatch to it), so a typo in a unit code is caught at load, not when a matter goes
nowhere. Loading reports every problem at once with the spreadsheet's row numbers (header = row 1).

A rule's `area` is `*` (anywhere the table applies) or a statistical division code: a county (6 digits),
township (9) or community (12). Division codes nest by prefix, so the rules that apply to a grid are those
whose area is a prefix of its community code, and the longest prefix wins: a community's own rule beats its
township's, which beats the county's, which beats `*`.

Level comes before area. `route(sub_category, level, where)` looks only at rules of the agency level asking;
if none of them covers the place, it tries the next level up, and so on to the city, never down. That is
逐级上报 (条例 §17): what an agency has no unit for, the one above routes. A route found above the level asked
says so (`Route.level`): the matter has to be escalated to that level's agency, which dispatches it; a
township agency does not dispatch to county departments on its own. A community rule at the asking level
therefore loses nothing to a `*` rule above it, and a `*` rule at the asking level beats a community rule
above it.

Checked at load, because a gap or a tie found at dispatch time leaves a resident waiting:
- ties: two rules for the same (sub-category, level, area) — which one would apply is a guess;
- gaps: given the sub-categories that must be routable (the time-limit table's), each needs at least one `*`
  rule at some level, so that no place goes unrouted. A `*` rule only covers its own level and those below
  it; a city-level request for a sub-category whose highest `*` rule is at county level still gets NoRoute,
  which is right for a county's table (the city has its own units);
- a rule for a sub-category outside that set: nothing can reach it, so it is almost always a typo.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from .grid_codes import LENGTH, GridCode, InvalidDivisionCode, check_division_code
from .levels import LEVELS, UnknownLevel
from .tables import (
    TableError, TableProblem, beside, canonical_sha256, is_code, read_csv, read_csv_rows, read_if_present, read_meta, row_reporter,
)

COLUMNS = ("sub_category", "level", "area", "lead_unit", "assisting_units")
UNIT_COLUMNS = ("code", "name", "kind", "levels")
UNIT_KINDS = ("linkage_department", "service_unit")   # 网格联动部门, 网格服务单位 (条例 §16)
ANYWHERE = "*"

_PACKAGED = "routing.csv"
_UNITS = "units.csv"


class RoutingTableError(TableError):
    """The routing table or its unit list cannot be used; `problems` lists every one found."""

    what = "the routing table"


class NoRoute(LookupError):
    """No rule routes that sub-category from that level up for that place; the message says what exists."""


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str
    levels: tuple[str, ...]   # the agency levels whose rules may name this unit
    row: int = field(default=0, compare=False)


@dataclass(frozen=True)
class RoutingRule:
    sub_category: str
    level: str
    area: str
    lead_unit: str
    assisting_units: tuple[str, ...]
    row: int = field(default=0, compare=False)   # in routing.csv, for messages and the dispatch record

    @property
    def units(self) -> tuple[str, ...]:
        return (self.lead_unit, *self.assisting_units)


@dataclass(frozen=True)
class Route:
    lead_unit: str
    assisting_units: tuple[str, ...]
    rule_row: RoutingRule     # the rule that decided, with its row in the spreadsheet

    @property
    def level(self) -> str:
        """The level whose rule applies; above the level asked, the matter must first be escalated there."""
        return self.rule_row.level

    @property
    def units(self) -> tuple[str, ...]:
        return self.rule_row.units


@dataclass(frozen=True, eq=False)
class RoutingTable:
    version: str
    effective_from: date
    rules: tuple[RoutingRule, ...]
    units: Mapping[str, Unit]

    @cached_property
    def _index(self) -> dict[tuple[str, str], dict[str, RoutingRule]]:
        index: dict[tuple[str, str], dict[str, RoutingRule]] = {}
        for rule in self.rules:
            index.setdefault((rule.sub_category, rule.level), {})[rule.area] = rule
        return index

    @property
    def sub_categories(self) -> list[str]:
        return sorted({rule.sub_category for rule in self.rules})

    def rules_for(self, sub_category: str) -> list[RoutingRule]:
        return [rule for rule in self.rules if rule.sub_category == sub_category]

    def route(self, sub_category: str, level: str, grid_code_or_division: GridCode | str) -> Route:
        """The units for a matter of `sub_category` before the agency at `level`, in the grid or division given
        (a GridCode, a grid code's text, or a county/township/community division code)."""
        if level not in LEVELS:
            raise UnknownLevel(f"unknown agency level {level!r}; known: {', '.join(LEVELS)}")
        division = _division_of(grid_code_or_division)
        if not any(rule.sub_category == sub_category for rule in self.rules):
            raise NoRoute(f"unknown sub-category {sub_category!r} in the routing table {self.version}; "
                          f"it has: {', '.join(self.sub_categories)}")
        # Longest prefix first; a division code only knows places as specific as itself.
        areas = [division[:length] for length in (12, 9, 6) if length <= len(division)] + [ANYWHERE]
        for candidate in LEVELS[LEVELS.index(level):]:
            rules = self._index.get((sub_category, candidate), {})
            for area in areas:
                if area in rules:
                    rule = rules[area]
                    return Route(rule.lead_unit, rule.assisting_units, rule)
        existing = ", ".join(f"{rule.level} {rule.area} (row {rule.row})" for rule in self.rules_for(sub_category))
        raise NoRoute(f"no route for {sub_category!r} from the {level} level up in {division}; the routing table "
                      f"{self.version} has rules for it at: {existing}")

    def __iter__(self) -> Iterator[RoutingRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of what the table means: re-ordering rows in Excel or renaming a unit keeps it."""
        rules = sorted([r.sub_category, r.level, r.area, r.lead_unit, list(r.assisting_units)] for r in self.rules)
        return canonical_sha256({"version": self.version, "effective_from": self.effective_from.isoformat(),
                                 "rules": rules})


CITY_TABLE = Path(__file__).parent / "data" / "city" / _PACKAGED


def load_city_routing(sub_categories: Iterable[str] | None = None) -> RoutingTable:
    """The sample city's own table (新乡市, data/city/: its routing rows and the city's departments and units):
    a matter escalated to the city is dispatched from it, since a county's table stops below the city."""
    return load_routing(CITY_TABLE, sub_categories)


def load_units(path: str | Path | None = None) -> dict[str, Unit]:
    """The unit list at `path`, or the one shipped in `rules/data`; RoutingTableError lists every problem."""
    name, raw = read_csv(path, _UNITS)
    problems: list[TableProblem] = []
    units = _check_units(name, raw, problems)
    if problems:
        raise RoutingTableError(problems)
    return units


def load_routing(path: str | Path | None = None, sub_categories: Iterable[str] | None = None, *,
                 units: Mapping[str, Unit] | str | Path | None = None) -> RoutingTable:
    """Load and check the routing table at `path` (its meta file beside it), or the one shipped in `rules/data`.

    `sub_categories`: the codes that must be routable (e.g. `load_time_limits().sub_categories`); each needs a
    `*` rule at some level, and a rule for any other code is an error. `units`: the unit list (loaded, or a path);
    by default the `units.csv` beside the table."""
    name, raw = read_csv(path, _PACKAGED)
    units_source = beside(path, _UNITS) if units is None else units
    problems: list[TableProblem] = []
    if isinstance(units_source, Mapping):
        known_units, units_usable = dict(units_source), True
    else:
        if isinstance(units_source, str):
            units_source = Path(units_source)
        units_name = units_source.name
        units_raw = read_if_present(units_source)
        if units_raw is None:
            problems.append(TableProblem(units_name, None, None, "missing: the routing table needs the unit list "
                                                                 f"({','.join(UNIT_COLUMNS)}) beside it"))
            known_units, units_usable = {}, False
        else:
            before = len(problems)
            known_units = _check_units(units_name, units_raw, problems)
            # Until the list is fixed, every rule naming a unit in a broken row would be reported again as
            # "unknown unit": noise that hides the real problem.
            units_usable = len(problems) == before
    required = None if sub_categories is None else sorted(set(sub_categories))
    version, effective_from = read_meta(path, _PACKAGED, problems)
    rules = _check_rules(name, raw, known_units if units_usable else None, required, problems)
    if problems:
        raise RoutingTableError(problems)
    return RoutingTable(version=version, effective_from=effective_from, rules=tuple(rules), units=known_units)


def _division_of(where: GridCode | str) -> str:
    if isinstance(where, GridCode):
        return where.community_code
    if isinstance(where, str) and len(where) == LENGTH:
        return GridCode.parse(where).community_code
    try:
        return check_division_code(where)
    except InvalidDivisionCode as exc:
        raise InvalidDivisionCode(where, exc.problems + ["route() takes a grid code (16 characters) or a county, "
                                                         "township or community division code"]) from None


def _records(name: str, raw: bytes, columns: tuple[str, ...],
             problems: list[TableProblem]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV, [] when it cannot be read; both routing files are useless without a row."""
    rows = read_csv_rows(name, raw, columns, problems)
    if rows is None:
        return []
    rows = list(rows)
    if not rows:
        problems.append(TableProblem(name, None, None, "no rows"))
    return rows


def _check_units(name: str, raw: bytes, problems: list[TableProblem]) -> dict[str, Unit]:
    units: dict[str, Unit] = {}
    named: dict[str, int] = {}
    for row, cells in _records(name, raw, UNIT_COLUMNS, problems):
        before = len(problems)

        problem = row_reporter(problems, name, row)

        code, unit_name, kind = cells["code"], cells["name"], cells["kind"]
        if not code:
            problem("code", "empty")
        elif not is_code(code):
            problem("code", f"{code!r} is not a code of lower-case letters, digits and _")
        elif code in units:
            problem("code", f"{code} is already in row {units[code].row}; each unit appears once")
        if not unit_name:
            problem("name", "empty")
        elif unit_name in named:
            # Two codes for one unit would split its tasks and statistics between them.
            problem("name", f"{unit_name} is already in row {named[unit_name]} under another code")
        if kind not in UNIT_KINDS:
            problem("kind", f"unknown kind {kind!r}; known: {', '.join(UNIT_KINDS)}")
        levels = _split(cells["levels"])
        if not levels:
            problem("levels", f"empty; give the agency levels that may dispatch to it, e.g. county;township "
                              f"(known: {', '.join(LEVELS)})")
        for level in levels:
            if level not in LEVELS:
                problem("levels", f"unknown level {level!r}; known: {', '.join(LEVELS)}")
        if len(set(levels)) < len(levels):
            problem("levels", "a level appears twice")
        if len(problems) > before:
            continue
        named[unit_name] = row
        units[code] = Unit(code, unit_name, kind, tuple(level for level in LEVELS if level in levels), row)
    return units


def _check_rules(name: str, raw: bytes, units: dict[str, Unit] | None, required: list[str] | None,
                 problems: list[TableProblem]) -> list[RoutingRule]:
    rules: list[RoutingRule] = []
    first_row: dict[tuple[str, str, str], int] = {}
    for row, cells in _records(name, raw, COLUMNS, problems):
        rule = _check_rule(name, row, cells, units, required, problems)
        if rule is None:
            continue
        key = (rule.sub_category, rule.level, rule.area)
        if key in first_row:
            problems.append(TableProblem(name, row, "sub_category, level, area",
                                         f"{rule.sub_category} / {rule.level} / {rule.area} is already in row "
                                         f"{first_row[key]}; which rule applies would be a guess (several units "
                                         f"on one matter go in assisting_units)"))
            continue
        first_row[key] = row
        rules.append(rule)
    if required is not None:
        for sub_category in required:
            own = [rule for rule in rules if rule.sub_category == sub_category]
            if any(rule.area == ANYWHERE for rule in own):
                continue
            if own:
                where = ", ".join(f"{rule.level} {rule.area} (row {rule.row})" for rule in own)
                reason = (f"gap: {sub_category} has rules only for {where}; add a rule with area * at some level "
                          f"so that every other place is routed")
            else:
                reason = f"gap: no rule routes {sub_category}; add at least one with area * at some level"
            problems.append(TableProblem(name, None, "sub_category", reason))
    return rules


def _check_rule(name: str, row: int, cells: dict[str, str], units: dict[str, Unit] | None,
                required: list[str] | None, problems: list[TableProblem]) -> RoutingRule | None:
    before = len(problems)

    problem = row_reporter(problems, name, row)

    sub_category, level, area = cells["sub_category"], cells["level"], cells["area"]
    if not sub_category:
        problem("sub_category", "empty")
    elif not is_code(sub_category):
        problem("sub_category", f"{sub_category!r} is not a code of lower-case letters, digits and _")
    elif required is not None and sub_category not in required:
        problem("sub_category", f"unknown sub-category {sub_category!r}: no matter can have it, so this rule "
                                f"would never apply")
    level_known = level in LEVELS
    if not level_known:
        problem("level", f"unknown level {level!r}; known: {', '.join(LEVELS)}")
    if area != ANYWHERE:
        try:
            check_division_code(area)
        except InvalidDivisionCode as exc:
            reason = f"{area!r} is not * or a county (6 digits), township (9) or community (12) division code"
            if "E+" in area.upper():
                reason += "; Excel turned the code into a number: format the column as text and type it again"
            elif len(area) in (6, 9, 12) and area.isascii() and area.isdigit():
                reason += f" ({'; '.join(exc.problems)})"
            problem("area", reason)
    lead = cells["lead_unit"]
    assisting = _split(cells["assisting_units"])
    if not lead:
        problem("lead_unit", "empty: every rule needs a lead unit (主办)")
    else:
        _check_unit("lead_unit", lead, level if level_known else None, units, problem)
    if any(mark in cells["assisting_units"] for mark in ("；", ",", "，", "、")):
        problem("assisting_units", "separate units with ';'")
    else:
        for unit in assisting:
            _check_unit("assisting_units", unit, level if level_known else None, units, problem)
        if lead and lead in assisting:
            problem("assisting_units", f"{lead} is the lead unit; a unit does not assist itself")
        if len(set(assisting)) < len(assisting):
            problem("assisting_units", "a unit appears twice")
    if len(problems) > before:
        return None
    return RoutingRule(sub_category, level, area, lead, tuple(assisting), row)


def _check_unit(column: str, code: str, level: str | None, units: dict[str, Unit] | None, problem) -> None:
    if not is_code(code):
        problem(column, f"{code!r} is not a unit code of lower-case letters, digits and _")
    elif units is None:
        return
    elif code not in units:
        problem(column, f"unknown unit {code!r}: it is not in the unit list")
    elif level is not None and level not in units[code].levels:
        unit = units[code]
        problem(column, f"{code} ({unit.name}) takes matters only from agencies at {', '.join(unit.levels)} "
                        f"(unit list row {unit.row}), not {level}")


def _split(cell: str) -> list[str]:
    # A trailing or doubled ';' is what deleting a unit in a spreadsheet leaves; it names nothing.
    return [part.strip() for part in cell.split(";") if part.strip()]
