"""`Idempotency-Key` on POST requests, across all web workers: the key is recorded by the transaction that
commits the command (engine/access/idempotency.py), the first outcome is stored with it and replayed to
retries; the command runs exactly once, and a request that never committed is simply run by its retry."""
from __future__ import annotations

import hashlib
import json
import os

from flask import Flask, Response, current_app, g, jsonify, request, url_for

from engine.access.idempotency import Replay, fingerprint

from api.http import present
from api.http.auth import current_principal
from api.http.context import current_engine
from api.http.errors import ApiError
from api.http.schemas import CaseSchema

HEADER = "Idempotency-Key"
FAULT_ENV = "GRIDFLOW_TEST_CRASH_AFTER_COMMIT"
REPLAYED = "Idempotent-Replayed"
# Outcomes a retry may cure are not kept when nothing committed: a lost race on the case, an internal fault.
_NOT_KEPT = {409} | set(range(500, 600))


def _meaning_of_body() -> bytes:
    """What a retry must repeat. A multipart upload is re-encoded with a fresh random boundary on every
    try, so it is compared by its fields and its files' names and contents, not by its raw bytes."""
    if request.mimetype != "multipart/form-data":
        return request.get_data()
    parts: list = [["field", name, value] for name, value in sorted(request.form.items(multi=True))]
    for name, upload in sorted(request.files.items(multi=True), key=lambda item: (item[0], item[1].filename or "")):
        content = upload.read()
        upload.seek(0)
        parts.append(["file", name, upload.filename, hashlib.sha256(content).hexdigest()])
    return json.dumps(parts, ensure_ascii=False).encode()


def _stored(replay: Replay) -> Response:
    stored = json.loads(replay.body)
    response = Response(stored["body"], status=replay.status_code, mimetype="application/json")
    for name, value in stored["headers"].items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response


def _documented_success(endpoint: str) -> tuple[int, object] | None:
    """The 2xx status and schema the POST view at `endpoint` documents."""
    view = current_app.view_functions.get(endpoint)
    method = getattr(getattr(view, "view_class", None), "post", None)
    responses = (getattr(method, "_apidoc", {}).get("response") or {}).get("responses") or {}
    for status, documented in responses.items():
        if 200 <= int(status) < 300 and documented:
            return int(status), documented[0].get("schema")
    return None


def _rebuilt(principal, key: str, replay: Replay) -> Response:
    """The answer to a request whose command committed but whose response was lost with its process: the
    case it wrote, as it now is, with the status the operation documents."""
    success = _documented_success(request.url_rule.endpoint)
    if replay.case_id is None or success is None or not isinstance(success[1], CaseSchema):
        raise ApiError(409, "idempotent_answer_lost", "该请求已生效，但其响应未能保存；请查询相关资源确认结果，勿重复提交",
                       f"the request with Idempotency-Key {key!r} took effect at "
                       f"{replay.committed_at.isoformat() if replay.committed_at else 'an unknown time'} but its "
                       "response was lost; read the resource it changed instead of sending it again")
    status, schema = success
    response = jsonify(schema.dump(present.case(principal, replay.case_id)))
    response.status_code = status
    headers = {}
    if status == 201:
        headers["Location"] = url_for("cases.Case", case_id=replay.case_id)
        response.headers["Location"] = headers["Location"]
    current_engine().idempotency.answered(principal.key, key, status, json.dumps(
        {"body": response.get_data(as_text=True), "headers": headers}))
    response.headers[REPLAYED] = "true"
    return response


def register(app: Flask) -> None:
    @app.before_request
    def _claim():
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST" or request.url_rule is None:
            return None
        principal = current_principal()  # a key belongs to its caller; no caller, no key
        store = current_engine().idempotency
        fingerprint_ = fingerprint(request.method, request.path, _meaning_of_body())
        replay = store.lookup(principal.key, key, fingerprint_)
        if replay is not None:
            return _stored(replay) if replay.body is not None else _rebuilt(principal, key, replay)
        scope = store.pending(principal.key, key, fingerprint_)
        g.idempotency = (scope, scope.__enter__())
        return None

    @app.after_request
    def _keep(response: Response):
        held = g.pop("idempotency", None)
        if held is None:
            return response
        scope, claim = held
        scope.__exit__(None, None, None)   # what is written from here on is not the request's command
        if _fault_after_commit() and claim.recorded:
            os._exit(86)   # the process dies between the commit and the response (tests only)
        if response.status_code >= 500 and claim.recorded:
            return response   # committed, answer failed: a retry answers from the case
        if response.status_code in _NOT_KEPT and not claim.recorded:
            if response.status_code == 409:   # a twin with the same key may have committed meanwhile
                winner = current_engine().idempotency.lookup(claim.principal, claim.key, claim.fingerprint)
                if winner is not None and winner.body is not None:
                    return _stored(winner)
            return response   # nothing committed: a retry runs the request
        headers = {k: v for k, v in response.headers.items() if k in ("Location",)}
        winner = current_engine().idempotency.finish_pending(
            claim, response.status_code, json.dumps({"body": response.get_data(as_text=True), "headers": headers}))
        if winner is not None and winner.body is not None:
            return _stored(winner)
        return response

    @app.teardown_request
    def _release(exc):
        held = g.pop("idempotency", None)
        if held is not None:  # the request died before a response was made: what it committed is recorded
            held[0].__exit__(None, None, None)


def _fault_after_commit() -> bool:
    """A fault hook for the crash test: with GRIDFLOW_TEST_CRASH_AFTER_COMMIT=1 in the environment, a worker
    dies right after a command with an Idempotency-Key committed, before its response is stored or sent."""
    return os.environ.get(FAULT_ENV) == "1"
