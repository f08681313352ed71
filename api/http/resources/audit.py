"""The auditor's read-only views (纪检, 督查; 条例 §22) over `Engine.audit`: verify history chains against the
signed checkpoints, sign a checkpoint, replay a case, see a case as it was at a moment, file its dossier.

Who, and why:
- verify and the checkpoint list: the auditor, and the platform account, which watches the system's health
  and reads every case anyway; findings name cases and positions, never their data. The process
  administrator is left out: the trail is what checks administrators too (separation of duties), and the
  role reads no cases.
- signing a checkpoint: the auditor only. The signature attests the heads on the auditor's authority, with a
  key kept apart from the database; a server without one answers 503 `audit_key_unavailable`.
- replay and the dossier: the auditor only (an investigation, and a replay costs what the commands cost).
- as-of: every role that may read the case, within its scope.

Personal data in as-of and the dossier is hidden unless `reveal=true` is asked for by a role that may see
it (rules/personal_data); what a reveal shows is logged before it is sent.
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.access import scopes
from engine.audit import dossier as dossiers
from engine.audit.asof import mask
from engine.audit.trail import AuditKeyError
from rules import personal_data
from rules.calendar import BEIJING

from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine
from api.http.errors import ApiError

blp = Blueprint("audit", __name__, url_prefix="/audit",
                description="Audit (纪检, 督查; 条例 §22): verify, checkpoints, replay, as-of, dossier — read-only")
log = logging.getLogger("gridflow.api")
AUDITOR = scopes.AUDITOR
WATCHERS = (scopes.AUDITOR, scopes.PLATFORM)
MAX_FINDINGS = 1000


# ---- schemas -------------------------------------------------------------------------------------------

class FindingSchema(Schema):
    case_id = fields.Integer(allow_none=True)
    seq = fields.Integer(allow_none=True, metadata={"description": "the first event found broken"})
    kind = fields.String(required=True, metadata={"description": "edited, deleted, inserted or reordered, "
                                                                 "truncated, rewritten, missing, head, checkpoint"})
    detail = fields.String(required=True)


class CheckpointRefSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.AwareDateTime(required=True)
    cases = fields.Integer(required=True)


class VerifySchema(Schema):
    intact = fields.Boolean(required=True)
    cases = fields.Integer(required=True)
    events = fields.Integer(required=True)
    checkpoint = fields.Nested(CheckpointRefSchema, allow_none=True,
                               metadata={"description": "the latest signed checkpoint compared against"})
    findings_total = fields.Integer(required=True)
    findings = fields.List(fields.Nested(FindingSchema), required=True,
                           metadata={"description": "at most `limit`, in case order"})
    notes = fields.List(fields.String(), required=True)


class VerifyArgs(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, MAX_FINDINGS),
                           metadata={"description": "findings listed at most (findings_total counts all)"})


class CheckpointSchema(Schema):
    id = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)
    key_id = fields.String(required=True, metadata={"description": "which key signed it (never the key)"})
    case_count = fields.Integer(required=True)
    signature = fields.String(required=True, metadata={"description": "HMAC-SHA256; keep copies elsewhere"})
    prev_signature = fields.String(allow_none=True)


class CheckpointListArgs(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class CheckpointListSchema(Schema):
    items = fields.List(fields.Nested(CheckpointSchema), required=True, metadata={"description": "newest first"})


class DivergenceSchema(Schema):
    seq = fields.Integer(required=True)
    command = fields.String(required=True)
    reason = fields.String(required=True)
    recorded = fields.Dict(required=True)
    replayed = fields.Dict(required=True)


class ReplaySchema(Schema):
    case_id = fields.Integer(required=True)
    equal = fields.Boolean(required=True, metadata={"description": "every step reproduced its recorded state"})
    steps = fields.Integer(required=True)
    events = fields.Integer(required=True)
    cannot = fields.String(allow_none=True, metadata={"description": "why the case cannot be replayed"})
    divergence = fields.Nested(DivergenceSchema, allow_none=True)


class RevealArgs(Schema):
    reveal = fields.Boolean(load_default=False, metadata={"description": "show personal data (roles that may "
                                                                         "see it; the read is logged)"})


class AsOfArgs(RevealArgs):
    at = fields.DateTime(required=True, metadata={"description": "the moment; Beijing time unless it has an "
                                                                 "offset, e.g. 2026-11-05T10:00+08:00"})


class AsOfTaskSchema(Schema):
    id = fields.Integer(required=True)
    element = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    unit = fields.String(allow_none=True)
    agency_level = fields.String(allow_none=True)
    state = fields.String(required=True)
    since = fields.String(required=True)


class AsOfDeadlineSchema(Schema):
    element = fields.String(required=True)
    name = fields.String(required=True)
    due_at = fields.String(allow_none=True)
    passed = fields.Boolean(required=True, metadata={"description": "already past at that moment"})


class AsOfSchema(Schema):
    case_id = fields.Integer(required=True)
    as_of = fields.String(required=True)
    last_seq = fields.Integer(required=True, metadata={"description": "the last event at or before the moment"})
    last_step_at = fields.String(required=True)
    definition_id = fields.Integer(required=True)
    status = fields.String(required=True)
    level = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    supervision = fields.String(allow_none=True)
    open_tasks = fields.List(fields.Nested(AsOfTaskSchema), required=True)
    deadlines = fields.List(fields.Nested(AsOfDeadlineSchema), required=True)
    data = fields.Dict(required=True)
    personal_data = fields.String(required=True, validate=validate.OneOf(["none", "hidden", "shown"]))


class DossierArgs(RevealArgs):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "html"]),
                           metadata={"description": "`html`: the printable page"})


class DossierSchema(Schema):
    case = fields.Dict(required=True)
    chain = fields.Dict(required=True, metadata={"description": "intact, findings, checkpoint, notes"})
    replay = fields.Dict(required=True, metadata={"description": "equal, steps, cannot, divergence"})
    steps = fields.List(fields.Dict(), required=True,
                        metadata={"description": "actor, role, time, deadlines as they stood, explanations"})
    generated_at = fields.String(required=True)
    personal_data = fields.String(required=True, validate=validate.OneOf(["hidden", "shown"]))


# ---- helpers -------------------------------------------------------------------------------------------

def _key_file():
    """The checkpoint key's file: the app's setting, else the engine reads GRIDFLOW_AUDIT_KEY_FILE."""
    return current_app.config.get("GRIDFLOW_AUDIT_KEY_FILE")


def _key_unavailable(exc: AuditKeyError) -> ApiError:
    log.warning("audit key: %s", exc)  # the file's path stays in the server's log
    return ApiError(503, "audit_key_unavailable", "服务器未配置可用的审计签名密钥",
                    "this server has no usable audit key (GRIDFLOW_AUDIT_KEY_FILE, kept apart from the "
                    "database): ask the administrator, or sign on the audit host with `gridflow audit "
                    "checkpoint --key FILE`")


def _verify(case_id: int | None, limit: int) -> dict:
    try:
        report = current_engine().audit.verify(case_id, key_file=_key_file())
    except AuditKeyError as exc:
        raise _key_unavailable(exc) from None
    return {"intact": report.intact, "cases": report.cases, "events": report.events,
            "checkpoint": None if report.checkpoint_id is None else {
                "id": report.checkpoint_id, "at": report.checkpoint_at, "cases": report.checkpoint_cases},
            "findings_total": len(report.findings), "findings": report.findings[:limit], "notes": report.notes}


def _may_reveal(reveal: bool) -> None:
    principal = current_principal()
    if reveal and not personal_data.sees_unmasked(principal.role):
        raise ApiError(403, "forbidden", "您的角色无权查看个人信息",
                       f"the {principal.role} role may not see personal data (条例第十八条); ask without reveal")


def _revealed(shown, hidden, path: str = "") -> list[str]:
    """Where the revealed view differs from the hidden one: the personal fields a reveal shows."""
    if isinstance(shown, dict) and isinstance(hidden, dict):
        return [p for k in shown for p in _revealed(shown[k], hidden.get(k), f"{path}.{k}" if path else str(k))]
    if isinstance(shown, list) and isinstance(hidden, list) and len(shown) == len(hidden):
        return [p for i, (a, b) in enumerate(zip(shown, hidden)) for p in _revealed(a, b, f"{path}[{i}]")]
    return [] if shown == hidden else [path]


def _log_reveal(case_id: int, fields_shown: list[str]) -> None:
    purpose = f"{request.method} {request.full_path.rstrip('?')}"
    current_engine().access_log.record(current_principal(), {case_id: sorted(set(fields_shown))}, purpose,
                                       clock=current_clock())


def _moment(at: datetime) -> datetime:
    return at.replace(tzinfo=BEIJING) if at.tzinfo is None else at


# ---- views ---------------------------------------------------------------------------------------------

@blp.route("/verify")
class VerifyAll(MethodView):
    @requires(*WATCHERS)
    @blp.arguments(VerifyArgs, location="query", as_kwargs=True)
    @blp.response(200, VerifySchema)
    def get(self, limit):
        """Every case's hash chain, its head, and the latest signed checkpoint (its signature checked when the
        server has the key). `intact` false lists what is broken, with where. Reads every event: on a large
        database prefer `gridflow audit verify` on the audit host."""
        return _verify(None, limit)


@blp.route("/cases/<id:case_id>/verify")
class VerifyCase(MethodView):
    @requires(*WATCHERS)
    @blp.arguments(VerifyArgs, location="query", as_kwargs=True)
    @blp.response(200, VerifySchema)
    def get(self, limit, case_id):
        """One case's chain and head, against the latest signed checkpoint; a case deleted since it was signed
        is reported as `missing`."""
        return _verify(case_id, limit)


@blp.route("/checkpoints")
class Checkpoints(MethodView):
    @requires(*WATCHERS)
    @blp.arguments(CheckpointListArgs, location="query", as_kwargs=True)
    @blp.response(200, CheckpointListSchema)
    def get(self, limit):
        """The latest checkpoints, newest first, with their signatures (keep copies outside this system)."""
        return {"items": current_engine().audit.checkpoints(limit)}

    @requires(AUDITOR)
    @blp.response(201, CheckpointSchema)
    @blp.alt_response(503, description="The server has no usable audit key")
    def post(self):
        """Sign every case's current history head with the server's audit key (kept apart from the database)."""
        try:
            row = current_engine().audit.checkpoint(by=current_principal().user, key_file=_key_file(),
                                                    clock=current_clock())
        except AuditKeyError as exc:
            raise _key_unavailable(exc) from None
        return row, 201


@blp.route("/cases/<id:case_id>/replay")
class Replay(MethodView):
    @requires(AUDITOR)
    @blp.response(200, ReplaySchema)
    def get(self, case_id):
        """Re-execute the case's recorded commands with their recorded clock and rule versions; the first step
        that does not reproduce its recorded state is shown beside what was recorded."""
        result = current_engine().audit.replay(case_id)
        if result.events == 0:
            current_engine().queries.case(case_id)  # no such case: 404, not an empty replay
        d = result.divergence
        return {"case_id": case_id, "equal": result.equal, "steps": result.steps, "events": result.events,
                "cannot": result.cannot, "divergence": None if d is None else {
                    "seq": d.seq, "command": d.command, "reason": d.reason, "recorded": d.recorded,
                    "replayed": d.replayed}}


@blp.route("/cases/<id:case_id>/as-of")
class AsOf(MethodView):
    @requires(*sorted(scopes.CASE_READERS))
    @blp.arguments(AsOfArgs, location="query", as_kwargs=True)
    @blp.response(200, AsOfSchema)
    def get(self, at, reveal, case_id):
        """The case as it was at a moment, replayed from its history: status, open tasks, deadlines (and
        whether each had passed), data. Any role that may read the case, within its scope."""
        principal = current_principal()
        _may_reveal(reveal)
        engine = current_engine()
        engine.queries.case(case_id, scope=principal)  # out of scope: not found
        view = engine.audit.as_of(case_id, _moment(at), reveal=True).to_dict()
        hidden = mask(view["data"])
        shown = _revealed(view["data"], hidden)
        if reveal and shown:
            _log_reveal(case_id, shown)
        elif not reveal:
            view["data"] = hidden
        return {**view, "personal_data": "none" if not shown else "shown" if reveal else "hidden"}


@blp.route("/cases/<id:case_id>/dossier")
class Dossier(MethodView):
    @requires(AUDITOR)
    @blp.arguments(DossierArgs, location="query", as_kwargs=True)
    @blp.response(200, DossierSchema)
    @blp.doc(responses={"200": {"description": "the dossier; `format=html`: the page", "content": {
        "application/json": {"schema": DossierSchema}, "text/html": {"schema": {"type": "string"}}}}})
    def get(self, format, reveal, case_id):
        """The case's dossier (案卷): every step with actor, role, time, the deadlines as they stood and the
        explanations given, with the chain check and the replay. `format=html`: a self-contained page."""
        engine = current_engine()
        try:
            data = engine.audit.dossier(case_id, engine.queries, reveal=reveal, key_file=_key_file(),
                                        clock=current_clock())
        except AuditKeyError as exc:
            raise _key_unavailable(exc) from None
        if reveal:
            parts = ("explanations",) if format == "html" else ("explanations", "data")  # what the page shows
            shown = [p for i, step in enumerate(data["steps"]) for part in parts
                     for p in _revealed(step[part], mask(step[part]), f"steps[{i}].{part}")]
            if shown:
                _log_reveal(case_id, [p.split(".", 1)[1] for p in shown])
        if format == "html":
            response = Response(dossiers.to_html(data), mimetype="text/html")
            # The page carries what people wrote (escaped); it may load nothing and run nothing.
            response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
            response.headers["Content-Disposition"] = f'inline; filename="dossier-{case_id}.html"'
            return response
        return data
