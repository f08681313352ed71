"""The dashboard: the statistics' headline figures (Engine.statistics) as tiles and charts, by region down
the division tree, by unit, by category and by month, each number drilling down to the cases behind it;
and the deadline board (yellow and red tasks). Everything is counted within the account's scope."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime

from flask import current_app, jsonify, render_template, request, url_for

from engine.access import scopes
from engine.statistics import periods
from engine.statistics.figures import BY_NAME, HEADLINE
from engine.statistics.service import FILTERS, GROUPS

from api.console import i18n
from api.console.blueprint import bp
from api.console.nav import NAV
from api.console.pages.tasks import page_number
from api.console.security import principal, signed_in
from api.http.context import current_clock, current_engine

_ROLES = next(item.roles for item in NAV if item.endpoint == "console.dashboard")
# The next level down the division tree from an agency's own.
_BELOW = {"city": "county", "county": "township", "township": "community", "community": "grid"}
RATES = ("closed_on_time_rate", "timely_sign_rate", "self_resolved_rate", "rework_rate", "satisfaction_rate")
COUNTS = ("reported", "valid_reported", "overdue_open", "suspended_open")
MONTHS_BACK = 6
CACHE_SECONDS = 60


class _Recent:
    """Reports computed in the last `CACHE_SECONDS`, per principal and question: a dashboard is opened
    again and again, and its figures are as of the moment they were computed (shown on the page)."""

    def __init__(self, size: int = 512):
        self._found: dict = {}
        self._lock = threading.Lock()
        self._size = size

    def get(self, key, compute):
        now = time.monotonic()
        with self._lock:
            hit = self._found.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._found) >= self._size:
                self._found.clear()
            self._found[key] = (now + CACHE_SECONDS, value)
        return value


def _recent() -> _Recent:
    """This app's recent reports (one engine per app, so one database)."""
    return current_app.extensions.setdefault("gridflow.console.recent_reports", _Recent())


def default_group(p) -> str:
    if p.role == scopes.GRID_AGENCY:
        return _BELOW.get(p.level, "grid")
    if p.role in (scopes.GRID_WORKER, scopes.RESPONSIBLE_UNIT):
        return "category"
    return "county"


def _month(text: str | None) -> date:
    today = periods.local_day(current_clock().now())
    if text:
        try:
            return datetime.strptime(text, "%Y-%m").date().replace(day=1)
        except ValueError:
            pass
    return today.replace(day=1)


def _months_before(first: date, count: int) -> date:
    return periods.shifted_back("month", first, count)


def _choices(p):
    groups = ["county", "township", "community", "grid", "unit", "category", "sub_category"]
    if p.role == scopes.GRID_WORKER:
        groups = ["category", "sub_category"]
    elif p.role == scopes.RESPONSIBLE_UNIT:
        groups = ["category", "sub_category", "grid"]
    return [g for g in groups if g in GROUPS]


@bp.route("/dashboard")
@signed_in(*_ROLES)
def dashboard():
    p = principal()
    month = _month(request.args.get("month"))
    group = request.args.get("group") if request.args.get("group") in _choices(p) else default_group(p)
    engine = current_engine()
    now = current_clock().now()
    # The tiles need only the month's total: one row, the cheapest report there is.
    report = _recent().get((p, "tiles", month), lambda: engine.statistics.report(
        p, period="month", start=month, end=periods.next_start("month", month), group_by="all", as_of=now,
        figures=list(HEADLINE)))
    total = next((r for r in report["rows"] if r["group"] == "*"), None)
    tiles = []
    for name in HEADLINE:
        figure = BY_NAME[name]
        entry = total["figures"][name] if total else None
        tiles.append({"name": name, "label": i18n.text(figure.zh, figure.en), "kind": figure.kind,
                      "value": entry["value"] if entry else None,
                      "href": drill_href(entry["drill"]["numerator"]) if entry else None})
    board = engine.paths.board(p, now, limit=15)
    return render_template("console/dashboard.html", month=month.strftime("%Y-%m"), group=group,
                           groups=_choices(p), tiles=tiles, board=board, rules=report["rules"],
                           as_of=report["as_of"],
                           data_href=url_for("console.dashboard_data", month=month.strftime("%Y-%m"), group=group))


@bp.route("/dashboard/data.json")
@signed_in(*_ROLES)
def dashboard_data():
    """The charts' numbers: by group for the month, and the last months for the whole scope."""
    p = principal()
    month = _month(request.args.get("month"))
    group = request.args.get("group") if request.args.get("group") in _choices(p) else default_group(p)
    engine = current_engine()
    now = current_clock().now()
    wanted = list(dict.fromkeys(COUNTS + RATES))
    # One report for both charts: the last months by group; its total rows ("*") are the trend.
    found = _recent().get((p, "charts", month, group), lambda: engine.statistics.report(
        p, period="month", start=_months_before(month, MONTHS_BACK - 1), end=periods.next_start("month", month),
        group_by=group, as_of=now, figures=wanted))
    this_month = found["periods"][-1]["key"]
    by_group = [r for r in found["rows"] if r["group"] != "*" and r["period"] == this_month]
    totals = {r["period"]: r for r in found["rows"] if r["group"] == "*"}
    months = [totals.get(period["key"]) or _empty(period["key"], wanted) for period in found["periods"]]
    names = {n: i18n.text(BY_NAME[n].zh, BY_NAME[n].en) for n in wanted}
    return jsonify({
        "labels": names, "counts": list(COUNTS), "rates": list(RATES),
        "groups": [_row(r, wanted) for r in by_group],
        "months": [_row(r, wanted) if r.get("figures") else r for r in months],
        "texts": {"by_group": i18n.text("按" + _GROUP_NAMES[group][0] + "统计", "By " + _GROUP_NAMES[group][1]),
                  "rates": i18n.text("比率（%）", "Rates (%)"), "trend": i18n.text("近六个月", "Last six months"),
                  "none": i18n.text("暂无数据", "No data yet")},
    })


_GROUP_NAMES = {"county": ("县（市、区）", "county"), "township": ("乡镇（街道）", "township"),
                "community": ("社区（村）", "community"), "grid": ("网格", "grid"), "unit": ("责任单位", "unit"),
                "category": ("事项大类", "category"), "sub_category": ("事项小类", "kind of matter"),
                "all": ("全部", "all")}


def _empty(period: str, wanted) -> dict:
    """A month with no facts in scope: nothing to count, nothing to drill into."""
    return {"group": "*", "name": "*", "period": period, "values": {n: None for n in wanted},
            "drill": {n: None for n in wanted}}


def _row(row: dict, wanted) -> dict:
    return {"group": row["group"], "name": row["name"] or row["group"], "period": row["period"],
            "values": {n: row["figures"][n]["value"] for n in wanted},
            "drill": {n: drill_href(row["figures"][n]["drill"]["numerator"]) for n in wanted}}


def drill_href(drill: dict) -> str:
    args = {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in drill.items() if v is not None}
    return url_for("console.dashboard_cases", **args)


@bp.route("/dashboard/cases")
@signed_in(*_ROLES)
def dashboard_cases():
    """The cases behind one number of the dashboard (its drill-down filter), within the account's scope."""
    allowed = ("figure", "part", "period_start", "period_end", "as_of", *FILTERS)
    drill = {k: request.args.get(k) for k in allowed if request.args.get(k)}
    page = current_engine().statistics.cases(principal(), drill, page=page_number(), per_page=25)
    figure = BY_NAME.get(drill.get("figure"))
    return render_template("console/drill.html", page=page, drill=drill, args=drill,
                           figure=i18n.text(figure.zh, figure.en) if figure else "",
                           pages=max(1, -(-page.total // 25)))
