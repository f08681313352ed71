"""Liveness and readiness for load balancers, and Prometheus metrics for monitoring."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from engine.access import scopes

from api.http import metrics
from api.http.auth import requires
from api.http.context import current_engine

blp = Blueprint("health", __name__, description="Health and metrics")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok, or unavailable"})
    database = fields.Boolean(required=True)


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database does not answer")
    @blp.doc(security=[])
    def get(self):
        """Up, and the database answers. No authentication; reveals nothing about cases."""
        ok = current_engine().queries.ping()
        return {"status": "ok" if ok else "unavailable", "database": ok}, 200 if ok else 503


@blp.route("/metrics")
class Metrics(MethodView):
    @requires(scopes.PLATFORM, scopes.AUDITOR, scopes.PROCESS_ADMIN)
    @blp.doc(responses={"200": {"description": "Prometheus text format",
                                "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def get(self):
        """Prometheus metrics: request latency, commands, open and overdue cases, timer lag. City-wide
        totals, so only for the platform, auditors and administrators."""
        return metrics.exposition()
