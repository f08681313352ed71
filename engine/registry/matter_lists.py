"""County grid matter lists in the database (网格事项清单, 条例 §13) and their approval.

A version exists only once its change went through the approval process (`processes/matter_list_change.bpmn`,
lifecycle `rules/list_change.py`): a department applies, the county grid authority reviews, the county agrees,
and when the case reaches `filed` the engine adopts the version here and writes the 备案 filing for the city,
in the same transaction as the case's history event. The rules (what a list may hold, which version is in
force, what may be assigned) stay in `rules/matter_list.py`; this module only stores and applies them.

A county that has filed no list yet is not checked: the engine would otherwise refuse every matter of a
county still drawing up its list. Once a county has a list, a task is not assigned to a grid worker for a
matter off it (the command fails, citing §13), except when the grid worker acts himself (collecting what he
found); a grid worker given such a task may refuse it (`CaseService.refuse_task`), and the refusal is recorded.
"""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from rules.catalog import cite, shipped_catalog
from rules.matter_list import MatterList, MatterListError, MatterLists, NotOnMatterList, TemporaryAdmission, diff
from rules.negative_list import OnNegativeList
from rules.tables import TableProblem, decode_csv_records, row_reporter, table_rows

from engine.errors import InvalidCommand, NotFound
from engine.store.models import Filing, MatterListVersion
from engine.registry.spreadsheets import csv_bytes, read_xlsx_records

PROCESS_KEY = "matter_list_change"
# The roles whose commands may hand a grid worker a task without the §13 check: the worker himself and the
# engine's own timers, which only carry out what the definition says.
_SELF = frozenset({"grid_worker", "system"})
EXPORT_COLUMNS = ("code", "name", "category", "admission", "expires_on", "reason")


class MatterListStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers

    # -- reading ------------------------------------------------------------------------------------

    def versions(self, county_code: str, *, session=None) -> list[MatterList]:
        """The county's list versions, oldest first."""
        if session is not None:
            return [_as_rules(row) for row in _rows(session, county_code)]
        with self._readers() as session:
            return [_as_rules(row) for row in _rows(session, county_code)]

    def records(self, county_code: str | None = None) -> list[dict]:
        """Every stored version with who adopted it and through which case, for listings."""
        with self._readers() as session:
            query = sa.select(MatterListVersion).order_by(MatterListVersion.county_code,
                                                          MatterListVersion.effective_from)
            if county_code:
                query = query.where(MatterListVersion.county_code == county_code)
            return [{"county_code": r.county_code, "version": r.version, "effective_from": r.effective_from,
                     "sub_categories": len(r.sub_categories), "temporary": len(r.temporary),
                     "case_id": r.case_id, "adopted_at": r.created_at, "adopted_by": r.created_by}
                    for r in session.scalars(query)]

    def in_force(self, county_code: str, on: date | datetime) -> MatterList:
        versions = self.versions(county_code)
        if not versions:
            raise NotFound(f"county {county_code} has filed no grid matter list (网格事项清单)")
        try:
            return MatterLists(versions).current(county_code, on)
        except LookupError as exc:
            raise NotFound(str(exc)) from None

    # -- the approval process -----------------------------------------------------------------------

    def proposed(self, session, data: dict, on: datetime) -> tuple[MatterList, MatterList | None]:
        """The list a change application would make, and the county's latest version it changes."""
        county = str(data.get("county_code") or "")
        versions = [_as_rules(row) for row in _rows(session, county)] if county else []
        base = versions[-1] if versions else None
        try:
            effective_from = _day(data.get("effective_from"), "effective_from")
            add, remove = _codes(data.get("add"), "add"), _codes(data.get("remove"), "remove")
            drop_temporary = _codes(data.get("remove_temporary"), "remove_temporary")
            temporary = [_admission(item) for item in _list(data.get("temporary"), "temporary")]
        except ValueError as exc:
            raise InvalidCommand(f"the matter list application: {exc}") from None
        unknown = [code for code in remove if base is None or code not in base.sub_categories]
        if unknown:
            raise InvalidCommand(f"the matter list application removes {', '.join(unknown)}, which the county's "
                                 f"current list{' ' + base.version if base else ''} does not have")
        codes = [c for c in (base.sub_categories if base else ()) if c not in remove]
        codes += [c for c in add if c not in codes]
        new_codes = {t.sub_category for t in temporary}
        # An admission that lapsed before the new version starts is not carried into it.
        carried = [t for t in (base.temporary if base else ())
                   if t.sub_category not in drop_temporary and t.sub_category not in new_codes
                   and (effective_from is None or t.expires_on > effective_from)]
        if base is not None and effective_from is not None and effective_from <= base.effective_from:
            raise InvalidCommand(f"the new version must take effect after the current one "
                                 f"({base.version}, from {base.effective_from}), not on {effective_from}")
        if not (add or remove or temporary or drop_temporary):
            raise InvalidCommand("the matter list application changes nothing: give add, remove, temporary "
                                 "or remove_temporary")
        try:
            matter_list = MatterList(county_code=county, version=str(data.get("version") or ""),
                                     effective_from=effective_from, sub_categories=codes,
                                     temporary=[*carried, *temporary])
        except MatterListError as exc:
            raise InvalidCommand(str(exc)) from None
        if any(v.version == matter_list.version for v in versions):
            raise InvalidCommand(f"county {county} already has a matter list version {matter_list.version}")
        return matter_list, base

    def check_application(self, session, data: dict, on: datetime) -> None:
        """Called when a change case starts: a change that could never be adopted is refused at once, with
        every problem named (negative-list matters cite 条例 §14)."""
        if not str(data.get("reason") or "").strip():
            raise InvalidCommand("a matter list application needs a reason (why the change is needed)")
        self.proposed(session, data, on)

    def adopt(self, session, case, data: dict, now: datetime) -> dict:
        """The change case reached `filed`: store the new version and write the filing for the city. The
        list is checked again against what is stored now, since another change may have been filed since."""
        matter_list, base = self.proposed(session, data, now)
        session.add(MatterListVersion(
            county_code=matter_list.county_code, version=matter_list.version,
            effective_from=matter_list.effective_from, sub_categories=list(matter_list.sub_categories),
            temporary=[_admission_json(t) for t in matter_list.temporary], case_id=case.id,
            created_at=now, created_by=f"case {case.id}"))
        change = diff(base, matter_list) if base is not None else None
        payload = {"county_code": matter_list.county_code, "version": matter_list.version,
                   "effective_from": matter_list.effective_from.isoformat(), "case_id": case.id,
                   "previous_version": base.version if base else None,
                   "added": list(change.added) if change else list(matter_list.sub_categories),
                   "removed": list(change.removed) if change else [],
                   "temporary_added": [_admission_json(t) for t in
                                       (change.temporary_added if change else matter_list.temporary)],
                   "temporary_removed": [_admission_json(t) for t in change.temporary_removed] if change else [],
                   "reason": str(data.get("reason") or "")}
        session.add(Filing(kind="matter_list", grid_code=None, payload=payload, created_at=now,
                           created_by=f"case {case.id}"))
        return {"county_code": matter_list.county_code, "version": matter_list.version}

    # -- §13 at run time ----------------------------------------------------------------------------

    def check_assignment(self, session, run, row) -> None:
        """A command is about to give a grid worker this task: refuse when the matter is off the county's
        list in force, unless the grid worker himself (or the engine's timer) is acting."""
        if run.role in _SELF:
            return
        found = self._verdict(session, run.case, run.clock.now())
        if found is None:
            return
        matter_list, refusal = found
        if refusal is not None:
            raise InvalidCommand(f"cannot assign {row.element_id} to a grid worker: {refusal}")
        run.notes["matter_list"] = f"{matter_list.county_code}/{matter_list.version}"

    def refusal_grounds(self, session, run) -> str:
        """Why a grid worker may refuse this case's task now (the rule cited), or InvalidCommand if he may not."""
        found = self._verdict(session, run.case, run.clock.now())
        if found is None:
            county = (run.case.grid_code or "")[:6] or "?"
            raise InvalidCommand(f"county {county} has filed no grid matter list, so there is nothing to refuse "
                                 f"against; a refusal under 条例第十三条 is for work off the county's list")
        matter_list, refusal = found
        if refusal is None:
            raise InvalidCommand(f"{run.case.sub_category!r} is on the grid matter list of county "
                                 f"{matter_list.county_code} (version {matter_list.version}); a grid worker may "
                                 f"refuse only work off the list — {cite('第十三条')}")
        return refusal

    def _verdict(self, session, case, now: datetime):
        """None when nothing can be checked (no grid, no kind, or the county has no list); else the list in
        force (or None) and the refusal text (None when the matter is on it)."""
        if not case.grid_code or not case.sub_category or len(case.grid_code) < 6:
            return None
        county = case.grid_code[:6]
        versions = [_as_rules(row) for row in _rows(session, county)]
        if not versions:
            return None
        lists = MatterLists(versions)
        try:
            return lists.check_assignable(county, case.sub_category, now), None
        except (NotOnMatterList, OnNegativeList) as exc:
            in_force = getattr(exc, "matter_list", None)
            return in_force, str(exc)

    # -- files --------------------------------------------------------------------------------------

    def change_from_file(self, county_code: str, name: str, data: bytes) -> dict:
        """The add/remove/temporary fields that turn the county's latest list into the list a file holds
        (the export's columns; `admission` permanent or temporary). Problems are reported by spreadsheet row,
        all at once."""
        problems: list[TableProblem] = []
        if name.lower().endswith(".xlsx"):
            records = read_xlsx_records(name, data, problems)
        else:
            records = decode_csv_records(name, data, problems)
        permanent: list[str] = []
        temporary: list[dict] = []
        rows = None if records is None else table_rows(name, records, EXPORT_COLUMNS, problems,
                                                          required=("code",))
        for row, cells in rows or ():
            problem = row_reporter(problems, name, row)
            code, admission = cells["code"], cells.get("admission") or "permanent"
            if not code:
                problem("code", "empty")
            elif code in permanent or any(t["sub_category"] == code for t in temporary):
                problem("code", f"{code} appears twice")
            elif admission == "permanent":
                permanent.append(code)
            elif admission == "temporary":
                if not cells.get("expires_on") or not cells.get("reason"):
                    problem("expires_on", "a temporary admission needs expires_on and reason")
                else:
                    temporary.append({"sub_category": code, "reason": cells["reason"],
                                      "expires_on": cells["expires_on"]})
            else:
                problem("admission", f"{admission!r} is neither permanent nor temporary")
        if problems:
            raise InvalidCommand("the matter list file has problems, nothing was applied:\n"
                                 + "\n".join(f"  {p}" for p in problems))
        versions = self.versions(county_code)
        base = versions[-1] if versions else None
        current = list(base.sub_categories) if base else []
        current_temporary = {t.sub_category: _admission_json(t) for t in (base.temporary if base else ())}
        return {"add": [c for c in permanent if c not in current],
                "remove": [c for c in current if c not in permanent],
                "temporary": [t for t in temporary if current_temporary.get(t["sub_category"]) != t],
                "remove_temporary": [c for c in current_temporary
                                     if c not in {t["sub_category"] for t in temporary}]}

    def export_csv(self, county_code: str, on: date | datetime) -> bytes:
        """The list in force on a day as officials publish it: one row per matter, temporary ones marked."""
        matter_list = self.in_force(county_code, on)
        catalog = shipped_catalog()
        rows = []
        for code in matter_list.sub_categories:
            sub = catalog.sub_categories.get(code)
            rows.append([code, sub.name if sub else "", sub.category if sub else "", "permanent", "", ""])
        for t in matter_list.temporary:
            sub = catalog.sub_categories.get(t.sub_category)
            rows.append([t.sub_category, sub.name if sub else "", sub.category if sub else "", "temporary",
                         t.expires_on.isoformat(), t.reason])
        return csv_bytes(EXPORT_COLUMNS, rows)


def _rows(session, county_code: str):
    return session.scalars(sa.select(MatterListVersion).where(MatterListVersion.county_code == county_code)
                           .order_by(MatterListVersion.effective_from)).all()


def _as_rules(row: MatterListVersion) -> MatterList:
    return MatterList(county_code=row.county_code, version=row.version, effective_from=row.effective_from,
                      sub_categories=tuple(row.sub_categories),
                      temporary=tuple(TemporaryAdmission(t["sub_category"], t["reason"],
                                                         date.fromisoformat(t["expires_on"]))
                                      for t in row.temporary))


def _admission_json(t: TemporaryAdmission) -> dict:
    return {"sub_category": t.sub_category, "reason": t.reason, "expires_on": t.expires_on.isoformat()}


def _day(value, what: str) -> date | None:
    if value is None or value == "":
        return None   # MatterList reports the missing date with the rest
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a date like 2027-01-01") from None


def _list(value, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list")
    return list(value)


def _codes(value, what: str) -> list[str]:
    codes = _list(value, what)
    bad = [c for c in codes if not isinstance(c, str)]
    if bad:
        raise ValueError(f"{what} must list sub-category codes, not {bad[:3]}")
    return codes


def _admission(item) -> TemporaryAdmission:
    if not isinstance(item, dict) or set(item) - {"sub_category", "reason", "expires_on"}:
        raise ValueError("each temporary admission is {sub_category, reason, expires_on}")
    return TemporaryAdmission(str(item.get("sub_category") or ""), str(item.get("reason") or ""),
                              _day(item.get("expires_on"), "expires_on") or date.min)
