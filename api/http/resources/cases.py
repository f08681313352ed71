"""Grid matters: report one (start a case), search them, read one with its open tasks, supervise (督办)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from engine.access import scopes
from rules.calendar import BEIJING

from api.http import present
from api.http.auth import current_principal, requires
from api.http.errors import ApiError
from api.http.context import current_clock, current_engine
from api.http.schemas import CasePageSchema, CaseSchema, CaseSearchArgs, CaseStartSchema, SuperviseSchema

blp = Blueprint("cases", __name__, url_prefix="/cases", description="Grid matters (网格事项)")
READERS = sorted(scopes.CASE_READERS)


def _day_start(day) -> datetime:
    return datetime.combine(day, time(0), tzinfo=BEIJING)


@blp.route("")
class Cases(MethodView):
    @requires(*READERS)
    @blp.arguments(CaseSearchArgs, location="query", as_kwargs=True)
    @blp.response(200, CasePageSchema)
    def get(self, page, per_page, status=None, grid=None, unit=None, category=None, overdue=None,
            created_from=None, created_to=None, figure=None, **statistic):
        """Search cases within your scope: status, grid, unit, category, overdue, creation days; or the
        cases behind a statistics figure (`figure`, `part`, `period_start`, `period_end`, ...).

        Grid workers see their grid, agencies their area, units what was dispatched to them; the
        auditor and the platform see all. `total` counts only what you may see."""
        principal = current_principal()
        within = None
        if figure is not None or statistic:
            within = _figure_cases(principal, figure, grid, unit, category, statistic)
            grid = unit = category = None  # they narrow the figure's facts, as in the report
        return current_engine().queries.search_cases(
            principal, status=status, grid_code=grid, unit=unit, category=category, overdue=overdue,
            created_from=_day_start(created_from) if created_from else None,
            created_to=_day_start(created_to) + timedelta(days=1) if created_to else None,
            within=within, page=page, per_page=per_page)

    @requires(scopes.GRID_WORKER, scopes.PLATFORM)
    @blp.arguments(CaseStartSchema)
    @blp.response(201, CaseSchema)
    def post(self, body):
        """Report a matter: start a case of a deployed process (latest version unless `version` is given).

        A grid worker reports in their own grid (`data.grid_code` defaults to it); the platform for any."""
        principal = current_principal()
        case_id = current_engine().acting.start(principal, body["process_key"], body["data"],
                                                version=body.get("version"), clock=current_clock())
        return present.case(principal, case_id), 201, {"Location": url_for("cases.Case", case_id=case_id)}


def _figure_cases(principal, figure, grid, unit, category, statistic):
    if figure is None or not statistic.get("period_start") or not statistic.get("period_end"):
        raise ApiError(422, "incomplete_figure_query", "统计明细须同时提供指标和统计期",
                       "the cases behind a figure need figure, period_start and period_end")
    drill = {"figure": figure, "grid": grid, "unit": unit, "category": category, **statistic}
    drill.setdefault("as_of", current_clock().now())
    return current_engine().statistics.case_filter(principal, drill)


@blp.route("/<id:case_id>")
class Case(MethodView):
    @requires(*READERS)
    @blp.response(200, CaseSchema)
    def get(self, case_id):
        """One case with its data, open tasks and what it waits for (messages, timers)."""
        return present.case(current_principal(), case_id)


@blp.route("/<id:case_id>/supervision")
class Supervision(MethodView):
    @requires(scopes.GRID_AGENCY)
    @blp.arguments(SuperviseSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """督办: a grid agency above the case's handling level supervises it (normal → yellow → red card)."""
        principal = current_principal()
        current_engine().acting.supervise(principal, case_id, body["card"], body["note"],
                                          clock=current_clock())
        return present.case(principal, case_id)
