"""My tasks: what is the signed-in account's to act on, with deadline colours; one task with its form and
actions (sign for, return with a reason, complete, request an extension, refuse under 条例 §13)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from engine.access import scopes
from engine.errors import EngineError, NotFound

from api.console import forms, i18n
from api.console.blueprint import bp
from api.console.security import principal, signed_in
from api.http import errors as api_errors
from api.http import present
from api.http.context import current_clock, current_engine

PER_PAGE = 25
TASK_ROLES = (scopes.GRID_WORKER, scopes.GRID_AGENCY, scopes.RESPONSIBLE_UNIT, scopes.COUNTY_GOVERNMENT,
              scopes.AUDITOR, scopes.PLATFORM)


def page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        return 1


@bp.route("/tasks")
@signed_in(*TASK_ROLES)
def tasks():
    p = principal()
    engine = current_engine()
    show_all = request.args.get("all") == "1"
    page = engine.queries.task_page(p, open_only=not show_all, page=page_number(), per_page=PER_PAGE)
    colours = engine.paths.deadlines([t.id for t in page.items], current_clock().now(), scope=p)
    supervise = None
    if p.role == scopes.GRID_AGENCY:  # the dispatched matters in its area that are late: to remind, to supervise
        supervise = engine.queries.search_cases(p, overdue=True, page=1, per_page=10)
    return render_template("console/tasks.html", page=page, colours=colours, show_all=show_all,
                           supervise=supervise, pages=_pages(page))


def _pages(page) -> int:
    return max(1, -(-page.total // page.per_page))


def failed(exc: EngineError) -> None:
    err = api_errors.from_engine(exc)
    flash(i18n.text(f"{err.zh}：{err.en}", err.en), "error")


@bp.route("/tasks/<id:task_id>")
@signed_in(*TASK_ROLES)
def task(task_id):
    p = principal()
    engine = current_engine()
    view = engine.queries.task(task_id, scope=p)
    case = present.case(p, view.case_id)
    loaded = engine.definitions.load(case["definition_id"])
    diagram = engine.paths.path(view.case_id, scope=p).diagram
    controls = forms.controls(loaded, view.element_id, diagram)
    mine = scopes.may_act_on_task(p, task_role=view.role, task_grid=view.grid_code, task_unit=view.unit,
                                  task_level=view.agency_level)
    deadline = engine.paths.deadlines([task_id], current_clock().now(), scope=p).get(task_id)
    return render_template("console/task.html", task=view, case=case, controls=controls, mine=mine,
                           deadline=deadline, problems=request.args.get("problems"))


def _done(case_id: int, zh: str, en: str):
    flash(i18n.text(zh, en), "ok")
    return redirect(url_for("console.case", case_id=case_id))


def _act(task_id: int, command: str, *args, zh: str, en: str):
    p = principal()
    try:
        case_id = getattr(current_engine().acting, command)(p, task_id, *args, clock=current_clock())
    except NotFound:
        abort(404)
    except EngineError as exc:
        failed(exc)
        return redirect(request.form.get("back") or url_for("console.task", task_id=task_id))
    return _done(case_id, zh, en)


@bp.route("/tasks/<id:task_id>/complete", methods=["POST"])
@signed_in(*TASK_ROLES)
def complete(task_id):
    p = principal()
    engine = current_engine()
    view = engine.queries.task(task_id, scope=p)
    case = engine.queries.case(view.case_id, scope=p)
    controls = forms.controls(engine.definitions.load(case.definition_id), view.element_id,
                              engine.paths.path(view.case_id, scope=p).diagram)
    try:
        data = forms.read(controls, request.form)
    except forms.FormInputError as exc:
        flash("; ".join(f"{name}: {i18n.text(*why)}" for name, why in exc.problems.items()), "error")
        return redirect(url_for("console.task", task_id=task_id))
    return _act(task_id, "complete", data, zh=f"已办结任务「{view.name}」", en=f"Task “{view.name}” completed")


@bp.route("/tasks/<id:task_id>/sign", methods=["POST"])
@signed_in(*TASK_ROLES)
def sign(task_id):
    return _act(task_id, "sign_for", zh="已签收", en="Signed for")


@bp.route("/tasks/<id:task_id>/return", methods=["POST"])
@signed_in(*TASK_ROLES)
def return_task(task_id):
    return _act(task_id, "return_task", request.form.get("reason", "").strip()[:2000],
                zh="已退单", en="Returned")


@bp.route("/tasks/<id:task_id>/refuse", methods=["POST"])
@signed_in(scopes.GRID_WORKER)
def refuse(task_id):
    return _act(task_id, "refuse", request.form.get("reason", "").strip()[:2000],
                zh="已拒绝（条例第十三条）", en="Refused (§13)")


def _int(name: str, default: int = 0) -> int:
    try:
        return int(request.form.get(name, default))
    except (TypeError, ValueError):
        return default


@bp.route("/tasks/<id:task_id>/extension", methods=["POST"])
@signed_in(scopes.RESPONSIBLE_UNIT)
def extension(task_id):
    return _act(task_id, "request_extension", _int("days"), request.form.get("reason", "").strip()[:2000],
                zh="已提交延期申请", en="Extension requested")


@bp.route("/tasks/<id:task_id>/extension/decision", methods=["POST"])
@signed_in(scopes.GRID_AGENCY)
def extension_decision(task_id):
    approve = request.form.get("approve") == "true"
    return _act(task_id, "decide_extension", approve, request.form.get("comment", "").strip()[:2000],
                zh="已批准延期" if approve else "已驳回延期申请",
                en="Extension approved" if approve else "Extension refused")


@bp.route("/tasks/<id:task_id>/reminder", methods=["POST"])
@signed_in(scopes.GRID_AGENCY)
def reminder(task_id):
    return _act(task_id, "remind", request.form.get("note", "").strip()[:2000], zh="已催办", en="Reminder sent")
