"""Messages from other systems into a case: a unit's feedback from its own system, a resident's answer
to the follow-up visit. Correlated to the case by its id; the case must be waiting for the message."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from engine.access import scopes

from api.http import present
from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine
from api.http.schemas import CaseSchema, CorrelatedMessageSchema, MessageSchema

blp = Blueprint("messages", __name__, description="Messages into cases")


def _deliver(case_id: int, name: str, payload: dict) -> dict:
    principal = current_principal()
    current_engine().acting.send_message(principal, case_id, name, payload, clock=current_clock())
    return present.case(principal, case_id)


@blp.route("/messages")
class Messages(MethodView):
    @requires(scopes.PLATFORM)
    @blp.arguments(CorrelatedMessageSchema)
    @blp.response(200, CaseSchema)
    def post(self, body):
        """Deliver message `name` to the case it correlates to (`case_id`)."""
        return _deliver(body["case_id"], body["name"], body["payload"])


@blp.route("/cases/<id:case_id>/messages")
class CaseMessages(MethodView):
    @requires(scopes.PLATFORM)
    @blp.arguments(MessageSchema)
    @blp.response(200, CaseSchema)
    def post(self, body, case_id):
        """Deliver message `name` to this case."""
        return _deliver(case_id, body["name"], body["payload"])
