"""Idempotency-Key: a retried POST returns the first result and acts once — across app instances (as
gunicorn workers are) and under concurrent retries, on SQLite and PostgreSQL."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from api.http.app import create_app
from engine.store.models import Case

from .api_fixtures import GRID, JWT_KEY, api, bearer  # noqa: F401  (fixture)

START = {"process_key": "grid_matter", "data": {"title": "井盖缺失", "grid_code": GRID}}


def _count_cases(engine) -> int:
    with engine.readers() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Case))


def test_retry_returns_first_result_and_acts_once(api):
    key = {"Idempotency-Key": "start-7f3a"}
    first = api.call("post", "/cases", "worker", START, headers=key)
    retry = api.call("post", "/cases", "worker", START, headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json == first.json and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"] == first.headers["Location"]
    assert _count_cases(api.engine) == 1

    changed = api.call("post", "/cases", "worker", {**START, "data": {"title": "别的"}}, headers=key)
    assert changed.status_code == 422 and changed.json["error"]["code"] == "idempotency_key_reused"
    # Keys belong to their caller: the platform's same key is a different request.
    other = api.call("post", "/cases", "platform", START, headers=key)
    assert other.status_code == 201 and other.json["id"] != first.json["id"]
    assert _count_cases(api.engine) == 2


def test_task_command_retried_after_success_is_not_applied_twice(api):
    case_id, handle = api.walk_to_handle()
    key = {"Idempotency-Key": "sign-1"}
    first = api.call("post", f"/tasks/{handle}/sign", "unit", headers=key)
    again = api.call("post", f"/tasks/{handle}/sign", "unit", headers=key)
    assert first.status_code == again.status_code == 200 and again.json == first.json
    assert [e.command for e in api.engine.queries.history(case_id)].count("sign_for") == 1
    # Without a key, a second sign-for is a new command, refused by the task's state.
    assert api.call("post", f"/tasks/{handle}/sign", "unit").status_code == 422


def test_refusals_are_kept_too_and_bad_keys_refused(api):
    key = {"Idempotency-Key": "bad-start"}
    first = api.call("post", "/cases", "worker", {"process_key": "nope"}, headers=key)
    again = api.call("post", "/cases", "worker", {"process_key": "nope"}, headers=key)
    assert first.status_code == again.status_code == 404 and again.headers.get("Idempotent-Replayed") == "true"
    long_key = api.call("post", "/cases", "worker", START, headers={"Idempotency-Key": "k" * 201})
    assert long_key.status_code == 422 and long_key.json["error"]["code"] == "invalid_idempotency_key"
    assert api.call("post", "/cases", None, START, headers={"Idempotency-Key": "x"}).status_code == 401


def test_two_app_instances_share_keys_and_concurrent_retries_act_once(api):
    # A second app on the same database: what another gunicorn worker is.
    other = create_app(api.engine, {"GRIDFLOW_JWT_KEY": JWT_KEY,
                                    "GRIDFLOW_CLOCK": api.client.application.config["GRIDFLOW_CLOCK"]})
    clients = [api.client, other.test_client()]
    headers = {**bearer("platform"), "Idempotency-Key": "hotline-20261102-0001"}

    def send(i):
        response = clients[i % 2].post("/cases", json=START, headers=headers)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(send, range(12)))
    created = [body["id"] for status, body in results if status == 201]
    busy = [body for status, body in results if status == 409]
    assert len(set(created)) == 1 and len(created) + len(busy) == 12
    assert all(b["error"]["message"]["en"].endswith("retry shortly") for b in busy)
    assert _count_cases(api.engine) == 1
    late = clients[1].post("/cases", json=START, headers=headers)
    assert late.status_code == 201 and late.get_json()["id"] == created[0]
