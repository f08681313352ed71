"""Statistics (条例 §15): figures per region, unit, worker, category or process version and period, as JSON,
CSV or .xlsx; each number carries the /cases URL that lists exactly the cases behind it."""
from __future__ import annotations

from datetime import date, datetime, timezone
from urllib.parse import quote, urlencode

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.access import scopes
from engine.statistics import export, periods
from engine.statistics.figures import FIGURES, HEADLINE, RULES_VERSION
from engine.statistics.service import GROUPS

from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine
from api.http.errors import ApiError

blp = Blueprint("statistics", __name__, url_prefix="/statistics", description="Statistics (数据分析, 条例 §15)")
READERS = (scopes.GRID_WORKER, scopes.GRID_AGENCY, scopes.RESPONSIBLE_UNIT, scopes.AUDITOR, scopes.PLATFORM)
Text = lambda n, **kw: fields.String(validate=validate.Length(max=n), **kw)  # noqa: E731


class StatisticsArgs(Schema):
    period = fields.String(load_default="month", validate=validate.OneOf(periods.PERIODS))
    start = fields.Date(required=True, metadata={"description": "first day (Beijing time), inclusive"})
    end = fields.Date(required=True, metadata={"description": "day after the last (Beijing time), exclusive"})
    group_by = fields.String(load_default="township", validate=validate.OneOf(GROUPS))
    figure = fields.List(fields.String(validate=validate.OneOf([f.name for f in FIGURES])),
                         metadata={"description": "figures wanted (repeat); default all"})
    area = Text(16, metadata={"description": "only this division or grid (code prefix)"})
    unit = Text(100)
    worker = Text(200)
    category = Text(100)
    sub_category = Text(100)
    process = Text(220, metadata={"description": "process key and version, e.g. grid_matter:1"})
    as_of = fields.AwareDateTime(metadata={"description": "count only what had happened by then; default now"})
    compare = fields.Boolean(load_default=False, metadata={"description": "add the span just before, and the change"})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "xlsx"]))


def _json(value):
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def drill_url(drill: dict) -> str:
    """The /cases search that lists the cases behind one number."""
    return "/cases?" + urlencode({k: v for k, v in _json(drill).items() if v not in (None, "")})


def _with_urls(report: dict) -> dict:
    for row in report["rows"]:
        for entry in row["figures"].values():
            entry["cases"] = {part: drill_url(filt) for part, filt in entry.pop("drill").items()}
    return report


@blp.route("")
class Figures(MethodView):
    @requires(*READERS)
    @blp.arguments(StatisticsArgs, location="query", as_kwargs=True)
    @blp.doc(responses={"200": {"description": "JSON (default), or CSV / .xlsx with `format`", "content": {
        "application/json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}}}}})
    def get(self, start, end, period, group_by, compare, format, figure=None, as_of=None, **filters):
        """Figures per group and period within your scope: an agency its area, a unit its own figures, a
        grid worker their grid; the auditor and the platform everything.

        Each figure has `value`, `numerator`, `denominator` and `cases`: the /cases URLs listing the cases
        counted above and below the line. `as_of` and `rules` say what the report was computed from, so it
        can be recomputed exactly (docs/statistics.md)."""
        if end <= start:   # a rule between two fields, which the spec cannot state: refused as a bad period
            raise ApiError(422, "invalid_period", f"统计区间有误：结束日期 {end} 须晚于开始日期 {start}",
                           f"the period is empty: end {end} must come after start {start}")
        report = current_engine().statistics.report(
            current_principal(), period=period, start=start, end=end, group_by=group_by,
            as_of=as_of or current_clock().now(), filters=filters, figures=figure, compare=compare)
        if format == "json":
            return _json(_with_urls(report))
        name = f"statistics_{period}_{start.isoformat()}_{end.isoformat()}.{format}"
        data, mimetype = (export.to_csv(report), "text/csv") if format == "csv" else \
            (export.to_xlsx(report), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        return Response(data, mimetype=mimetype, headers={
            "Content-Disposition": f"attachment; filename=\"{quote(name)}\"; filename*=UTF-8''{quote(name)}",
            "X-Statistics-As-Of": _json(report["as_of"]), "X-Statistics-Rules": RULES_VERSION})


@blp.route("/headline")
class Headline(MethodView):
    @requires(*READERS)
    @blp.doc(responses={"200": {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}})
    def get(self):
        """The headline figures of the current month, all of your scope."""
        now = current_clock().now()
        return {"as_of": now.isoformat(), "figures": current_engine().statistics.headline(current_principal(),
                                                                                          now=now)}


@blp.route("/definitions")
class Definitions(MethodView):
    @requires()
    @blp.doc(responses={"200": {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}})
    def get(self):
        """What every figure counts above and below the line (docs/statistics.md in words)."""
        return {"version": RULES_VERSION, "headline": list(HEADLINE), "figures": [
            {"name": f.name, "zh": f.zh, "en": f.en, "kind": f.kind,
             "numerator": [list(p) for p in f.numerator], "denominator": [list(p) for p in f.denominator]}
            for f in FIGURES]}



