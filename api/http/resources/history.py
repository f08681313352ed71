"""A case's history: every command, who gave it, what it changed, hash-chained, with the chain checked."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from engine.access import scopes

from api.http import present
from api.http.auth import current_principal, requires
from api.http.schemas import HistorySchema

blp = Blueprint("history", __name__, description="Case histories")


@blp.route("/cases/<id:case_id>/history")
class History(MethodView):
    @requires(*sorted(scopes.CASE_READERS))
    @blp.response(200, HistorySchema)
    def get(self, case_id):
        """The events of a case you may see, oldest first; `chain_intact` says whether the hash chain holds.
        Payloads are masked like the case's data for roles that do not need personal data."""
        return present.history(current_principal(), case_id)
