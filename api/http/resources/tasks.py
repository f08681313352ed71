"""Human tasks: my tasks, and acting on one — sign for (签收), return (退单), complete, a grid worker's
refusal of work off the county's list (条例 §13), and the deadline actions: request and decide an extension
(延期), remind (催办)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from engine.access import scopes

from api.http import present
from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine
from api.http.schemas import (CaseSchema, CompleteSchema, ExtensionDecisionSchema, ExtensionRequestSchema, RefusalSchema,
                       RemindSchema, ReturnSchema, TaskListArgs, TaskPageSchema, TaskSchema)

blp = Blueprint("tasks", __name__, url_prefix="/tasks", description="Human tasks")
READERS = sorted(scopes.CASE_READERS)
LANES = (scopes.GRID_WORKER, scopes.GRID_AGENCY, scopes.RESPONSIBLE_UNIT)
# The county government's only task is its agreement to a matter list change (条例 §13): it completes it.
COMPLETERS = (*LANES, scopes.COUNTY_GOVERNMENT)


def _act(command: str, *args) -> dict:
    """Run a command as the caller and answer with the case as they may see it afterwards."""
    principal = current_principal()
    case_id = getattr(current_engine().acting, command)(principal, *args, clock=current_clock())
    return present.case(principal, case_id)


@blp.route("")
class Tasks(MethodView):
    @requires(*READERS)
    @blp.arguments(TaskListArgs, location="query", as_kwargs=True)
    @blp.response(200, TaskPageSchema)
    def get(self, page, per_page, all, case_id=None, role=None, unit=None, grid=None, level=None):
        """My tasks: a grid worker's in their grid, an agency's at its level in its area, a unit's
        dispatched to it; the auditor and the platform see every task. Open ones unless `all`."""
        return current_engine().queries.task_page(current_principal(), case_id=case_id, open_only=not all,
                                                  role=role, unit=unit, grid_code=grid, agency_level=level,
                                                  page=page, per_page=per_page)


@blp.route("/<id:task_id>")
class Task(MethodView):
    @requires(*READERS)
    @blp.response(200, TaskSchema)
    def get(self, task_id):
        """One task of a case you may see."""
        return current_engine().queries.task(task_id, scope=current_principal())


@blp.route("/<id:task_id>/sign")
class Sign(MethodView):
    @requires(scopes.RESPONSIBLE_UNIT, scopes.GRID_AGENCY, scopes.GRID_WORKER)
    @blp.response(200, CaseSchema)
    def post(self, task_id):
        """签收: the unit the task was dispatched to signs for it; the matter is then in progress."""
        return _act("sign_for", task_id)


@blp.route("/<id:task_id>/return")
class Return(MethodView):
    @requires(*LANES)
    @blp.arguments(ReturnSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, task_id):
        """退单: the unit says the matter is not its duty, with a reason, within the return window."""
        return _act("return_task", task_id, body["reason"])


@blp.route("/<id:task_id>/complete")
class Complete(MethodView):
    @requires(*COMPLETERS)
    @blp.arguments(CompleteSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, task_id):
        """Complete your task with the data its form asks for."""
        return _act("complete", task_id, body["data"])


@blp.route("/<id:task_id>/refusal")
class Refusal(MethodView):
    @requires(scopes.GRID_WORKER)
    @blp.arguments(RefusalSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, task_id):
        """条例 §13: a grid worker refuses his task, with a reason, when the matter is not on the county's
        grid matter list in force (422 citing the list when it is on it, or when the county has none)."""
        return _act("refuse", task_id, body["reason"])


@blp.route("/<id:task_id>/extension")
class Extension(MethodView):
    @requires(scopes.RESPONSIBLE_UNIT)
    @blp.arguments(ExtensionRequestSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, task_id):
        """延期申请: before the deadline, the unit asks for more working days (1–10 in all), with a reason."""
        return _act("request_extension", task_id, body["days"], body["reason"])


@blp.route("/<id:task_id>/extension/decision")
class ExtensionDecision(MethodView):
    @requires(scopes.GRID_AGENCY)
    @blp.arguments(ExtensionDecisionSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, task_id):
        """The dispatching agency approves (the deadline moves by the days asked) or refuses."""
        return _act("decide_extension", task_id, body["approve"], body["comment"])


@blp.route("/<id:task_id>/reminder")
class Reminder(MethodView):
    @requires(scopes.GRID_AGENCY)
    @blp.arguments(RemindSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, task_id):
        """催办: the dispatching agency reminds the unit before its deadline (recorded in the history)."""
        return _act("remind", task_id, body["note"])
