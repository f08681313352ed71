"""The lifecycle of a grid matter beyond its tasks: suspension (挂账) and resumption, withdrawal (撤回),
and duplicates (重复件): linking a report to its open master, and the suggested ones."""
from __future__ import annotations

from dataclasses import asdict

from flask.views import MethodView
from flask_smorest import Blueprint

from engine.access import scopes

from api.http import present
from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine
from api.http.schemas import (CaseSchema, DuplicateCandidateSchema, DuplicateSchema, ReasonSchema,
                              ResumeSchema, UrgencySchema)

blp = Blueprint("lifecycle", __name__, url_prefix="/cases", description="Suspension, withdrawal, duplicates")


@blp.route("/<id:case_id>/suspension")
class Suspension(MethodView):
    @requires(scopes.GRID_AGENCY)
    @blp.arguments(ReasonSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """挂账: take the matter off the clock, with a reason; its deadlines keep the time they had left."""
        principal = current_principal()
        current_engine().acting.suspend(principal, case_id, body["reason"], clock=current_clock())
        return present.case(principal, case_id)


@blp.route("/<id:case_id>/resumption")
class Resumption(MethodView):
    @requires(scopes.GRID_AGENCY)
    @blp.arguments(ResumeSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """Resume a suspended matter: back to the status it left, deadlines re-armed with the time left."""
        principal = current_principal()
        current_engine().acting.resume(principal, case_id, body["note"], clock=current_clock())
        return present.case(principal, case_id)


@blp.route("/<id:case_id>/withdrawal")
class Withdrawal(MethodView):
    @requires(scopes.PLATFORM, scopes.GRID_AGENCY)
    @blp.arguments(ReasonSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """撤回: the platform withdraws a report for its reporter before dispatch; the agency after."""
        principal = current_principal()
        current_engine().acting.withdraw(principal, case_id, body["reason"], clock=current_clock())
        return present.case(principal, case_id)


@blp.route("/<id:case_id>/duplicate-of")
class DuplicateOf(MethodView):
    @requires(scopes.PLATFORM, scopes.GRID_AGENCY, scopes.GRID_WORKER)
    @blp.arguments(DuplicateSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """重复件: link this report to the open matter it duplicates; it is closed with it."""
        principal = current_principal()
        current_engine().acting.link_duplicate(principal, case_id, body["master_id"], body["note"],
                                               clock=current_clock())
        return present.case(principal, case_id)


@blp.route("/<id:case_id>/duplicate-candidates")
class DuplicateCandidates(MethodView):
    @requires(*sorted(scopes.CASE_READERS))
    @blp.response(200, DuplicateCandidateSchema(many=True))
    def get(self, case_id):
        """Open matters of the same grid and sub-category reported in the 7 days before this one."""
        found = current_engine().queries.duplicate_candidates(case_id, scope=current_principal())
        return [asdict(c) for c in found]


@blp.route("/<id:case_id>/urgency")
class Urgency(MethodView):
    @requires(scopes.GRID_AGENCY)
    @blp.arguments(UrgencySchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """加急: raise the urgency; a running handling deadline is recomputed from the time-limit table."""
        principal = current_principal()
        current_engine().acting.set_urgency(principal, case_id, body["urgency"], body["reason"],
                                            clock=current_clock())
        return present.case(principal, case_id)
