"""Cases: search with the API's filters and pages; a case with its timeline, its data masked by role, its
deadlines and its diagram with the path taken; the agencies' supervision (督办)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from engine.access import scopes
from engine.errors import EngineError, NotFound
from rules.calendar import BEIJING

from api.console import i18n
from api.console.blueprint import bp
from api.console.pages.tasks import failed, page_number
from api.console.security import principal, signed_in
from api.http import present
from api.http.context import current_clock, current_engine

PER_PAGE = 25
READERS = tuple(sorted(scopes.CASE_READERS))
FILTERS = ("status", "grid", "unit", "category", "overdue", "created_from", "created_to")


def _day(text: str | None):
    if not text:
        return None
    try:
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(0), tzinfo=BEIJING)
    except ValueError:
        return None


def _filters() -> dict:
    args = {k: (request.args.get(k) or "").strip()[:100] for k in FILTERS}
    return {k: v for k, v in args.items() if v}


@bp.route("/cases")
@signed_in(*READERS)
def cases():
    given = _filters()
    overdue = {"yes": True, "no": False}.get(given.get("overdue"))
    start, end = _day(given.get("created_from")), _day(given.get("created_to"))
    page = current_engine().queries.search_cases(
        principal(), status=given.get("status"), grid_code=given.get("grid"), unit=given.get("unit"),
        category=given.get("category"), overdue=overdue, created_from=start,
        created_to=end + timedelta(days=1) if end else None, page=page_number(), per_page=PER_PAGE)
    return render_template("console/cases.html", page=page, given=given, statuses=i18n.STATUSES,
                           pages=max(1, -(-page.total // PER_PAGE)))


@bp.route("/cases/<id:case_id>")
@signed_in(*READERS)
def case(case_id):
    p = principal()
    engine = current_engine()
    shown = present.case(p, case_id)
    history = present.history(p, case_id)
    open_ids = [t["id"] for t in shown["open_tasks"]]
    deadlines = engine.paths.deadlines(open_ids, current_clock().now(), scope=p)
    acting = {t["id"]: scopes.may_act_on_task(p, task_role=t["role"], task_grid=t["grid_code"],
                                                task_unit=t["unit"], task_level=t["agency_level"])
              for t in shown["open_tasks"]}
    dispatching = scopes.is_dispatching_agency(p, case_grid=shown["grid_code"], case_level=shown["level"])
    higher = scopes.is_higher_agency(p, case_grid=shown["grid_code"], case_level=shown["level"])
    return render_template("console/case.html", case=shown, history=history, deadlines=deadlines,
                           acting=acting, dispatching=dispatching, higher=higher)


@bp.route("/cases/<id:case_id>/path.json")
@signed_in(*READERS)
def case_path(case_id):
    """What the diagram draws: the definition's BPMN, the elements done, open and waiting."""
    path = current_engine().paths.path(case_id, scope=principal())
    response = jsonify({"case_id": path.case_id, "diagram": path.diagram, "done": path.done,
                        "active": path.active,
                        "waiting": [{**w, "due_text": i18n.when(datetime.fromisoformat(w["due_at"]))
                                     if w["due_at"] else ""} for w in path.waiting]})
    return response


@bp.route("/cases/<id:case_id>/supervision", methods=["POST"])
@signed_in(scopes.GRID_AGENCY)
def supervise(case_id):
    try:
        current_engine().acting.supervise(principal(), case_id, request.form.get("card", ""),
                                          request.form.get("note", "").strip()[:2000], clock=current_clock())
    except NotFound:
        abort(404)
    except EngineError as exc:
        failed(exc)
    else:
        flash(i18n.text("已督办", "Supervision recorded"), "ok")
    return redirect(url_for("console.case", case_id=case_id))
