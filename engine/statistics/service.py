"""`Statistics`: figures by region, unit, worker, category or process version, per day, week, month,
quarter or year, within a principal's scope, each number with the filter that lists the cases behind it.

Computed by SQL aggregation over `stat_facts` (indexed on the period moment, grid and unit): one query
for the flows of every day in the range, grouped by the chosen dimension, one for the stocks (spans open
at each period's end); the days are summed into periods here, since every part is additive."""
from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from engine.access import scopes
from engine.access.scopes import Principal
from engine.clock import SYSTEM_CLOCK
from engine.errors import EngineError
from engine.statistics import facts, periods
from engine.statistics.figures import BY_NAME, FIGURES, HEADLINE, RULES_VERSION, value_of
from engine.store.db import UTCDateTime
from engine.store.models import Division, StatFact as F

GROUPS = ("all", "county", "township", "community", "grid", "unit", "worker", "category", "sub_category",
          "process")
_REGION_DIGITS = {"county": 6, "township": 9, "community": 12}
# A group or filter value standing for "none" (a report has no unit yet).
NONE = "-"
FILTERS = ("area", "grid", "unit", "worker", "category", "sub_category", "process")
_FLOW_PARTS = ("count", "on_time", "nonzero", "amount", "amount_n")


class StatisticsError(EngineError):
    code = "invalid_statistics_request"


def _group_column(group_by: str):
    if group_by == "all":
        return sa.literal("*")
    if group_by in _REGION_DIGITS:
        return sa.func.substr(F.grid_code, 1, _REGION_DIGITS[group_by])
    if group_by == "grid":
        return F.grid_code
    if group_by not in GROUPS:
        raise StatisticsError(f"unknown grouping {group_by!r}; one of {', '.join(GROUPS)}")
    return getattr(F, group_by)


def fact_scope(p: Principal):
    """The facts a principal may count: an agency its area, a worker their grid, a unit its own figures
    (what was dispatched to it); the auditor and the platform everything."""
    if p.role in scopes.SEE_ALL:
        return sa.true()
    if p.role == scopes.GRID_AGENCY:
        return F.grid_code.like(scopes.area_prefix(p.area_code) + "%")
    if p.role == scopes.GRID_WORKER:
        return F.grid_code == p.grid_code
    if p.role == scopes.RESPONSIBLE_UNIT:
        return F.unit == p.unit
    raise scopes.Forbidden(f"the {p.role} role has no statistics to read")


def _filter_clauses(filters: dict) -> list:
    where = []
    for name, value in (filters or {}).items():
        if value is None or value == "":
            continue
        if name not in FILTERS:
            raise StatisticsError(f"unknown filter {name!r}; one of {', '.join(FILTERS)}")
        value = str(value)
        if name == "area":
            if not value.isdigit() or len(value) not in (4, 6, 9, 12, 16):
                raise StatisticsError(f"area must be a division or grid code of digits, not {value!r}")
            where.append(F.grid_code.like(scopes.area_prefix(value) + "%"))
            continue
        column = F.grid_code if name == "grid" else getattr(F, name)
        where.append(column.is_(None) if value == NONE else column == value)
    return where


def _local_day(column, dialect: str):
    if dialect == "postgresql":
        return sa.func.date(sa.func.timezone("Asia/Shanghai", column))
    return sa.func.date(column, "+8 hours")


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _seconds_since(moment: datetime, column, dialect: str):
    bound = sa.literal(moment, UTCDateTime)
    if dialect == "postgresql":
        return sa.func.extract("epoch", bound - column)
    return (sa.func.julianday(bound) - sa.func.julianday(column)) * 86400


class Statistics:
    """The figures of docs/statistics.md.

    `report(principal, period=..., start=..., end=..., group_by=...)` is the method adapters call (the
    console draws its charts from it); `cases(principal, drill)` lists the cases behind one number."""

    def __init__(self, readers, queries):
        self._readers = readers
        self._queries = queries

    # -- the command path ---------------------------------------------------------------------------

    @staticmethod
    def record(session, run, event) -> None:
        facts.record(session, run, event)

    # -- figures --------------------------------------------------------------------------------------

    def report(self, principal: Principal, *, period: str = "month", start: date, end: date,
               group_by: str = "township", as_of: datetime | None = None, filters: dict | None = None,
               figures: list[str] | None = None, compare: bool = False) -> dict:
        """The figures for each period of `period` kind covering the Beijing-time days start..end-1, per
        group (and a total row, group "*"), counted only within the principal's scope.

        Returns a dict (JSON-ready but for dates):
          as_of, period, start, end, group_by, filters,
          rules: {"figures": the definitions' version, "used": [rule versions the facts were judged by]},
          periods: [{key, start, end}],
          rows: [{group, name, period, figures: {figure: {value, numerator, denominator,
                  drill: {"numerator": filter, "denominator": filter}, [previous, change]}}}]
        A drill filter is what `cases()` (and GET /cases) takes to list exactly the cases behind that
        number. `as_of` (default now) counts only what had happened by then, so a past report can be
        recomputed exactly; a period's figures never count facts after its own end either. `compare` adds
        each figure's value in the same span of periods just before, and the change."""
        as_of = (as_of or SYSTEM_CLOCK.now()).astimezone(timezone.utc)
        try:
            spans = periods.split(period, start, end)
        except periods.PeriodError as exc:
            raise StatisticsError(str(exc)) from None
        unknown = [n for n in (figures or []) if n not in BY_NAME]
        if unknown:
            raise StatisticsError(f"unknown figures {unknown}; known: {', '.join(BY_NAME)}")
        chosen = [BY_NAME[n] for n in figures] if figures else list(FIGURES)
        scope = fact_scope(principal)
        where = [scope, *_filter_clauses(filters)]
        parts, names = self._parts(spans, group_by, where, as_of)
        report = self._assemble(spans, parts, names, chosen, group_by, as_of, filters or {})
        report.update(period=period, start=spans[0][1], end=spans[-1][2], group_by=group_by,
                      as_of=as_of, filters={k: v for k, v in (filters or {}).items() if v not in (None, "")})
        report["rules"] = {"figures": RULES_VERSION, "used": self._rules_used(spans, where, as_of)}
        if compare:
            before = periods.shifted_back(period, spans[0][1], len(spans))
            previous = self.report(principal, period=period, start=before, end=spans[0][1], group_by=group_by,
                                   as_of=as_of, filters=filters, figures=figures)
            _attach_previous(report, previous)
        return report

    def headline(self, principal: Principal, *, now: datetime | None = None) -> dict:
        """The headline figures of the current month, all of the principal's scope in one row."""
        now = now or SYSTEM_CLOCK.now()
        month = periods.period_start("month", periods.local_day(now))
        report = self.report(principal, period="month", start=month, end=periods.next_start("month", month),
                             group_by="all", as_of=now, figures=list(HEADLINE))
        row = next((r for r in report["rows"] if r["group"] == "*"), None)
        return {name: (row["figures"][name]["value"] if row else None) for name in HEADLINE}

    def _parts(self, spans, group_by, where, as_of) -> dict:
        """{(group, period index): {part: number}} over all periods."""
        first, last = periods.utc_start(spans[0][1]), periods.utc_start(spans[-1][2])
        starts = [s for _, s, _ in spans]
        group = _group_column(group_by)
        found: dict = defaultdict(lambda: defaultdict(float))
        with self._readers() as session:
            dialect = session.get_bind().dialect.name
            dup = sa.select(F.case_id, sa.func.min(F.at).label("dup_at")).where(F.kind == "duplicate") \
                .group_by(F.case_id).subquery()
            day = _local_day(F.period_at, dialect)
            dup_day = _local_day(dup.c.dup_at, dialect)
            flows = sa.select(
                F.kind, group.label("g"), day.label("day"), dup_day.label("dup_day"), sa.func.count(),
                sa.func.sum(sa.case((F.on_time.is_(True), 1), else_=0)),
                sa.func.sum(sa.case((F.n > 0, 1), else_=0)),
                sa.func.sum(F.amount), sa.func.count(F.amount),
            ).select_from(F).outerjoin(dup, dup.c.case_id == F.case_id) \
                .where(F.period_at >= first, F.period_at < last, F.at <= as_of, *where) \
                .group_by(F.kind, group, day, dup_day)
            for kind, g, d, dd, count, on_time, nonzero, amount, amount_n in session.execute(flows):
                index = bisect.bisect_right(starts, _as_date(d)) - 1
                if index < 0:
                    continue
                dd = _as_date(dd)
                # A report linked as a duplicate before a period ended never counts in it.
                if kind != "duplicate" and dd is not None and dd < spans[index][2]:
                    continue
                cell = found[(g, index)]
                for name, number in zip(_FLOW_PARTS, (count, on_time, nonzero, amount or 0.0, amount_n)):
                    cell[(name, kind)] += number or 0
            ends = [_stock_moment(e, as_of) for _, _, e in spans]
            columns = []
            for moment in ends:
                open_then = sa.and_(F.at < moment, sa.or_(F.until.is_(None), F.until >= moment))
                columns.append(sa.func.sum(sa.case((open_then, 1), else_=0)))
                columns.append(sa.func.sum(sa.case((open_then, _seconds_since(moment, F.at, dialect)), else_=0)))
            stocks = sa.select(F.kind, group.label("g"), *columns) \
                .where(F.kind.in_(facts.SPAN_KINDS), F.at < max(ends), sa.or_(F.until.is_(None), F.until >= min(ends)),
                       *where).group_by(F.kind, group)
            for kind, g, *sums in session.execute(stocks):
                for index in range(len(spans)):
                    count, seconds = sums[2 * index] or 0, sums[2 * index + 1] or 0
                    if count:
                        found[(g, index)][("stock", kind)] += count
                        found[(g, index)][("stock_days", kind)] += round(float(seconds) / 86400, 4)
            names = _region_names(session, group_by, {g for g, _ in found})
        return found, names

    def _assemble(self, spans, parts, names, chosen, group_by, as_of, filters) -> dict:
        totals: dict = defaultdict(lambda: defaultdict(float))
        for (g, index), cell in parts.items():
            for part, number in cell.items():
                totals[index][part] += number
        rows = []
        keyed = sorted(parts.items(), key=lambda item: (item[0][1], str(item[0][0])))
        if group_by != "all":
            keyed += [(("*", index), cell) for index, cell in sorted(totals.items())]
        for (g, index), cell in keyed:
            key, s, e = spans[index]
            group_filter = {} if g == "*" else _group_filter(group_by, g)
            drill_base = {"period_start": s, "period_end": e, "as_of": as_of, **filters, **group_filter}
            figures = {}
            for figure in chosen:
                value, num, den = value_of(figure, cell)
                entry = {"value": value, "numerator": _clean(num), "denominator": _clean(den),
                         "drill": {"numerator": {"figure": figure.name, "part": "numerator", **drill_base}}}
                if figure.denominator:
                    entry["drill"]["denominator"] = {"figure": figure.name, "part": "denominator", **drill_base}
                figures[figure.name] = entry
            rows.append({"group": NONE if g is None else g, "name": names.get(g), "period": key,
                         "figures": figures})
        return {"periods": [{"key": k, "start": s, "end": e} for k, s, e in spans], "rows": rows}

    def _rules_used(self, spans, where, as_of) -> list[str]:
        first, last = periods.utc_start(spans[0][1]), periods.utc_start(spans[-1][2])
        with self._readers() as session:
            return sorted(r for r in session.scalars(
                sa.select(F.rules).distinct().where(F.kind.in_(("dispatched", "signed", "filed")),
                                                    F.period_at >= first, F.period_at < last, F.at <= as_of,
                                                    F.rules.is_not(None), *where)))

    # -- drill-down ---------------------------------------------------------------------------------

    def case_filter(self, principal: Principal, drill: dict):
        """A subquery of the case ids behind one number of a report (its `drill` filter): the facts the
        number counted, under the same scope and filters."""
        name, part = drill.get("figure"), drill.get("part", "numerator")
        if name not in BY_NAME:
            raise StatisticsError(f"unknown figure {name!r}; known: {', '.join(BY_NAME)}")
        if part not in ("numerator", "denominator"):
            raise StatisticsError("part is numerator or denominator")
        figure = BY_NAME[name]
        try:
            start, end = _as_date(drill["period_start"]), _as_date(drill["period_end"])
        except (KeyError, ValueError):
            raise StatisticsError("a drill-down names its period: period_start and period_end (dates)") from None
        if start is None or end is None or end <= start:
            raise StatisticsError("period_end must come after period_start")
        as_of = drill.get("as_of") or SYSTEM_CLOCK.now()
        if isinstance(as_of, str):
            try:
                as_of = datetime.fromisoformat(as_of)
            except ValueError:
                raise StatisticsError(f"as_of is an ISO time, not {as_of!r}") from None
        if as_of.tzinfo is None:
            raise StatisticsError("as_of needs a time zone")
        first, last = periods.utc_start(start), periods.utc_start(end)
        stock_at = _stock_moment(end, as_of)
        dup = aliased(F)
        linked_before_end = sa.exists().where(dup.case_id == F.case_id, dup.kind == "duplicate", dup.at < last)
        conditions = []
        for kind_of_part, kind in (figure.numerator if part == "numerator" else figure.denominator):
            if kind_of_part in ("stock", "stock_days"):
                conditions.append(sa.and_(F.kind == kind, F.at < stock_at,
                                          sa.or_(F.until.is_(None), F.until >= stock_at)))
                continue
            clause = [F.kind == kind, F.period_at >= first, F.period_at < last, F.at <= as_of]
            if kind != "duplicate":
                clause.append(sa.not_(linked_before_end))
            if kind_of_part == "on_time":
                clause.append(F.on_time.is_(True))
            elif kind_of_part == "nonzero":
                clause.append(F.n > 0)
            elif kind_of_part in ("amount", "amount_n"):
                clause.append(F.amount.is_not(None))
            conditions.append(sa.and_(*clause))
        filters = {k: drill.get(k) for k in FILTERS}
        return sa.select(F.case_id).where(sa.or_(*conditions), fact_scope(principal), *_filter_clauses(filters))

    def cases(self, principal: Principal, drill: dict, *, page: int = 1, per_page: int = 50):
        """The cases behind one number, a page at a time, as the case search shows them."""
        return self._queries.search_cases(principal, within=self.case_filter(principal, drill), page=page,
                                          per_page=per_page)


def _stock_moment(end: date, as_of: datetime) -> datetime:
    """When a period's stocks are taken: its end, or just after `as_of` when that comes first (what had
    happened by `as_of`, inclusive, as for the flows)."""
    return min(periods.utc_start(end), as_of + timedelta(microseconds=1))


def _group_filter(group_by: str, value) -> dict:
    if group_by in _REGION_DIGITS:
        return {"area": value} if value else {"grid": NONE}
    if group_by == "all":
        return {}
    return {group_by: NONE if value is None else value}


def _clean(number):
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _region_names(session, group_by: str, codes: set) -> dict:
    if group_by not in _REGION_DIGITS:
        return {}
    wanted = [c for c in codes if c]
    if not wanted:
        return {}
    return dict(session.execute(sa.select(Division.code, Division.name).where(Division.code.in_(wanted))).all())


def _attach_previous(report: dict, previous: dict) -> None:
    """Each row gets the value the same group had in the matching period of the earlier span."""
    keys = [p["key"] for p in report["periods"]]
    before = [p["key"] for p in previous["periods"]]
    shift = dict(zip(keys, before))
    index = {(r["group"], r["period"]): r for r in previous["rows"]}
    for row in report["rows"]:
        old = index.get((row["group"], shift.get(row["period"])))
        for name, entry in row["figures"].items():
            was = old["figures"][name]["value"] if old else None
            entry["previous"] = was
            entry["change"] = (round(entry["value"] - was, 4)
                               if isinstance(entry["value"], (int, float)) and isinstance(was, (int, float))
                               else None)
    report["compared_with"] = {"start": previous["start"], "end": previous["end"]}
