"""`Idempotency-Key` on POST requests, across all web workers: the first outcome is stored with the key
and replayed to retries; the command runs once."""
from __future__ import annotations

import hashlib
import json

from flask import Flask, Response, g, request

from engine.access.idempotency import fingerprint

from api.http.auth import current_principal
from api.http.context import current_engine

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# Outcomes a retry may cure are not kept: a lost race on the case, an internal fault.
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


def register(app: Flask) -> None:
    @app.before_request
    def _claim():
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST" or request.url_rule is None:
            return None
        principal = current_principal()  # a key belongs to its caller; no caller, no key
        store = current_engine().idempotency
        replay = store.claim(principal.key, key, fingerprint(request.method, request.path, _meaning_of_body()))
        if replay is not None:
            stored = json.loads(replay.body)
            response = Response(stored["body"], status=replay.status_code, mimetype="application/json")
            for name, value in stored["headers"].items():
                response.headers[name] = value
            response.headers[REPLAYED] = "true"
            return response
        g.idempotency = (principal.key, key)
        return None

    @app.after_request
    def _keep(response: Response):
        claimed = g.pop("idempotency", None)
        if claimed is None:
            return response
        store = current_engine().idempotency
        if response.status_code in _NOT_KEPT:
            store.release(*claimed)
        else:
            headers = {k: v for k, v in response.headers.items() if k in ("Location",)}
            store.finish(*claimed, response.status_code,
                         json.dumps({"body": response.get_data(as_text=True), "headers": headers}))
        return response

    @app.teardown_request
    def _release(exc):
        claimed = g.pop("idempotency", None)
        if claimed is not None:  # the request died before a response was made
            current_engine().idempotency.release(*claimed)
