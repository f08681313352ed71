"""Hostile input and tampering: a revoked API key, checkpoint chains and their witness, spreadsheets that
expand on decompression or hold huge fields, formulas in exported cells, unbounded timer values."""
from __future__ import annotations

from api.http.app import create_app

from .api_fixtures import GRID, JWT_KEY, api  # noqa: F401  (fixture)


def test_a_revoked_api_key_is_refused_on_the_next_request_on_every_worker(api):
    key, view = api.engine.api_keys.create("hotline bridge", user="12345-bridge", by="admin")
    headers = {"Authorization": f"Bearer {key}"}
    other = create_app(api.engine, {"GRIDFLOW_JWT_KEY": JWT_KEY}).test_client()  # another gunicorn worker
    for client in (api.client, other):   # both have the key cached now
        assert client.get("/cases", headers=headers).status_code == 200
    api.engine.api_keys.revoke(view.id)   # as `gridflow apikey revoke` does, from outside both workers
    for client in (api.client, other):
        refused = client.get("/cases", headers=headers)
        assert refused.status_code == 401 and refused.json["error"]["message"]["zh"] == "API 密钥无效或已吊销"
