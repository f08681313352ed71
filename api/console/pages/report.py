"""Report a matter (事件上报): the intake form with the admission catalog's categories (条例 §12) and the grid
preset (a grid worker reports in their own grid). The negative list (§14) is shown in the form, and a
refusal by the engine is shown with the article it cites."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from engine.access import scopes
from engine.errors import EngineError
from rules.catalog import cite, shipped_catalog
from rules.negative_list import shipped_negative_list

from api.console import i18n
from api.console.blueprint import bp
from api.console.security import principal, signed_in
from api.http import errors as api_errors
from api.http.context import current_clock, current_engine

PROCESS = "grid_matter"
URGENCIES = (("normal", "一般", "normal"), ("urgent", "紧急", "urgent"), ("emergency", "特急", "emergency"))
TEXT_FIELDS = {"title": 200, "description": 4000, "location": 500}


def _choices():
    catalog = shipped_catalog()
    return catalog, shipped_negative_list().entries


@bp.route("/report", methods=["GET", "POST"])
@signed_in(scopes.GRID_WORKER, scopes.PLATFORM)
def report():
    p = principal()
    catalog, negative = _choices()
    values = {k: (request.form.get(k) or "").strip()[:limit] for k, limit in
              {**TEXT_FIELDS, "sub_category": 100, "urgency": 20, "grid_code": 40, "reporter_name": 100,
               "reporter_phone": 30}.items()}
    refusal = problems = None
    if request.method == "POST":
        problems = {k: i18n.text("必填", "required") for k in ("title", "sub_category") if not values[k]}
        if p.role == scopes.PLATFORM and not values["grid_code"]:
            problems["grid_code"] = i18n.text("必填", "required")
        if not problems:
            data = _data(values, catalog)
            try:
                case_id = current_engine().acting.start(p, PROCESS, data, clock=current_clock())
            except EngineError as exc:
                err = api_errors.from_engine(exc)
                refusal = {"zh": err.zh, "en": err.en, "article": _article(str(exc))}
            else:
                flash(i18n.text(f"已上报，案件编号 {case_id}", f"Reported as case {case_id}"), "ok")
                return redirect(url_for("console.case", case_id=case_id))
    status = 422 if refusal or problems else 200
    return render_template("console/report.html", catalog=catalog, negative=negative, values=values,
                           problems=problems or {}, refusal=refusal, urgencies=URGENCIES,
                           grid=p.grid_code, article14=cite("第十四条"), article13=cite("第十三条")), status


def _data(values: dict, catalog) -> dict:
    data = {k: values[k] for k in TEXT_FIELDS if values[k]}
    kind = values["sub_category"]
    data["sub_category"] = kind
    if kind in catalog:
        data["category"] = catalog.sub_category(kind).category
    if values["urgency"] in {u[0] for u in URGENCIES}:
        data["urgency"] = values["urgency"]
    if values["grid_code"]:
        data["grid_code"] = values["grid_code"]
    reporter = {k: values[f"reporter_{k}"] for k in ("name", "phone") if values[f"reporter_{k}"]}
    if reporter:
        data["reporter"] = reporter
    return data


def _article(message: str) -> str | None:
    for article in ("第十四条", "第十三条"):
        if article in message:
            return cite(article)
    return None
