"""The HTTP API end to end on SQLite and PostgreSQL: a matter's lifecycle through the endpoints, search
and scope, personal data masking with its read log, history, errors in one shape."""
from __future__ import annotations

import pytest

from .api_fixtures import GRID, OTHER_GRID, REPORTER, UNIT, api, bearer  # noqa: F401  (fixture)


def test_lifecycle_through_the_api(api):
    case_id, handle = api.walk_to_handle(sub_category="road_lighting")
    shown = api.call("get", f"/cases/{case_id}", "unit").json
    assert shown["status"] == "dispatched" and [t["element_id"] for t in shown["open_tasks"]] == ["handle"]

    assert api.call("post", f"/tasks/{handle}/sign", "unit").json["status"] == "in_progress"
    extension = api.call("post", f"/tasks/{handle}/extension", "unit", {"days": 2, "reason": "需采购灯具"})
    assert extension.status_code == 200, extension.json
    decided = api.call("post", f"/tasks/{handle}/extension/decision", "agency", {"approve": True})
    assert decided.status_code == 200, decided.json
    reminded = api.call("post", f"/tasks/{handle}/reminder", "agency", {"note": "请按期办结"})
    assert reminded.status_code == 200, reminded.json
    supervised = api.call("post", f"/cases/{case_id}/supervision", "agency_township", {"card": "yellow"})
    assert supervised.status_code == 200, supervised.json
    done = api.call("post", f"/tasks/{handle}/complete", "unit", {"data": {"result": "更换灯具 6 套", "final": True}})
    assert done.status_code == 200 and done.json["status"] == "verifying", done.json
    check = api.task_of(case_id, "check_result")
    assert api.call("post", f"/tasks/{check}/complete", "worker", {"data": {"passed": True}}).status_code == 200
    close = api.task_of(case_id, "close_case")
    closed = api.call("post", f"/tasks/{close}/complete", "agency", {"data": {"summary": "按期办结"}})
    assert closed.json["status"] == "closed"
    assert [w["name"] for w in closed.json["waiting"]] == ["resident_follow_up"] or closed.json["waiting"]
    follow_up = api.call("post", "/messages", "platform",
                         {"case_id": case_id, "name": "resident_follow_up", "payload": {"satisfied": True}})
    assert follow_up.status_code == 200 and follow_up.json["status"] == "evaluated", follow_up.json

    history = api.call("get", f"/cases/{case_id}/history", "auditor").json
    assert history["chain_intact"] is True
    commands = [e["command"] for e in history["events"]]
    for expected in ("start", "sign_for", "request_extension", "decide_extension", "remind", "supervise",
                     "message"):
        assert expected in commands
    actors = {e["command"]: e["actor"] for e in history["events"]}
    assert actors["sign_for"] == "区城管局" and actors["supervise"] == "街道网格中心"


def test_return_with_reason_and_refusals(api):
    case_id, handle = api.walk_to_handle()
    missing = api.call("post", f"/tasks/{handle}/return", "unit", {})
    assert missing.status_code == 422 and "reason" in missing.json["error"]["details"]["json"]
    returned = api.call("post", f"/tasks/{handle}/return", "unit", {"reason": "不属本单位职责"})
    assert returned.status_code == 200 and returned.json["status"] == "returned"
    again = api.call("post", f"/tasks/{handle}/complete", "unit", {"data": {"result": "x"}})
    assert again.status_code == 422 and again.json["error"]["code"] == "invalid_command"
    assert again.json["error"]["message"]["zh"] and "returned" in again.json["error"]["message"]["en"]


def test_search_filters_scope_and_pages(api):
    first, _ = api.walk_to_handle()
    for n in range(3):
        assert api.call("post", "/cases", "worker", {"process_key": "grid_matter",
                                                    "data": {"title": f"事项{n}", "category": "安全隐患排查"}}
                        ).status_code == 201
    assert api.call("post", "/cases", "platform", {"process_key": "grid_matter",
                                                   "data": {"title": "别处", "grid_code": OTHER_GRID}}
                    ).status_code == 201

    page = api.call("get", "/cases?per_page=2", "worker").json
    assert page["total"] == 4 and len(page["items"]) == 2 and page["items"][0]["id"] > page["items"][1]["id"]
    assert api.call("get", "/cases?page=3&per_page=2", "worker").json["items"] == []
    assert api.call("get", "/cases", "worker_other").json["total"] == 1
    assert api.call("get", "/cases", "auditor").json["total"] == 5
    assert api.call("get", "/cases", "agency").json["total"] == 4
    assert api.call("get", "/cases", "agency_other").json["total"] == 1
    assert api.call("get", "/cases", "agency_township").json["total"] == 5  # both communities are its area
    assert api.call("get", "/cases", "agency_other_county").json["total"] == 0
    unit_view = api.call("get", "/cases", "unit").json
    assert unit_view["total"] == 1 and unit_view["items"][0]["id"] == first
    assert api.call("get", "/cases", "unit_other").json["total"] == 0
    # A filter never widens the scope: another grid's cases stay invisible.
    assert api.call("get", f"/cases?grid={OTHER_GRID}", "worker").json["total"] == 0
    assert api.call("get", "/cases?category=安全隐患排查", "auditor").json["total"] == 3
    assert api.call("get", "/cases?status=dispatched", "auditor").json["total"] == 1
    assert api.call("get", f"/cases?unit={UNIT}", "auditor").json["total"] == 1
    assert api.call("get", "/cases?overdue=true", "auditor").json["total"] == 0
    assert api.call("get", "/cases?overdue=false", "auditor").json["total"] == 5
    assert api.call("get", "/cases?created_from=2026-11-02&created_to=2026-11-02", "auditor").json["total"] == 5
    assert api.call("get", "/cases?created_from=2026-11-03", "auditor").json["total"] == 0

    tasks = api.call("get", "/tasks", "worker").json
    assert tasks["total"] == 3 and {t["element_id"] for t in tasks["items"]} == {"verify_register"}
    assert api.call("get", "/tasks", "unit").json["total"] == 1
    assert api.call("get", "/tasks", "unit_other").json["total"] == 0
    assert api.call("get", "/tasks", "agency").json["total"] == 0  # dispatched: nothing for the agency now
    assert api.call("get", f"/tasks?case_id={first}&all=true", "auditor").json["total"] == 4


def test_personal_data_masked_by_role_and_unmasked_reads_logged(api):
    case_id, _ = api.walk_to_handle()
    before = len(api.engine.access_log.reads(case_id))
    unit_view = api.call("get", f"/cases/{case_id}", "unit").json
    assert unit_view["personal_data"] == "masked"
    assert unit_view["data"]["reporter"] == {"name": "李**", "phone": "138****0001",
                                             "id_number": "410***********1234", "address": "红旗区东风街****"}
    assert len(api.engine.access_log.reads(case_id)) == before  # a masked read is not a personal-data read
    unit_history = api.call("get", f"/cases/{case_id}/history", "unit").json
    start = unit_history["events"][0]
    assert start["payload"]["data"]["reporter"]["phone"] == "138****0001"
    assert unit_history["chain_intact"] is True

    worker_view = api.call("get", f"/cases/{case_id}", "worker").json
    assert worker_view["personal_data"] == "unmasked" and worker_view["data"]["reporter"] == REPORTER
    auditor_history = api.call("get", f"/cases/{case_id}/history", "auditor").json
    assert auditor_history["events"][0]["payload"]["data"]["reporter"]["id_number"] == REPORTER["id_number"]
    reads = api.engine.access_log.reads(case_id)
    assert len(reads) == before + 2
    latest, previous = reads[0], reads[1]
    assert (latest.user, latest.role, latest.purpose) == ("纪检组", "auditor", f"GET /cases/{case_id}/history")
    assert "data.reporter.id_number" in latest.fields
    assert (previous.user, previous.role) == ("王网格", "grid_worker")
    assert sorted(previous.fields) == ["reporter.address", "reporter.id_number", "reporter.name", "reporter.phone"]


def test_worker_reports_only_in_own_grid(api):
    other = api.call("post", "/cases", "worker", {"process_key": "grid_matter", "data": {"grid_code": OTHER_GRID}})
    assert other.status_code == 403 and other.json["error"]["code"] == "forbidden"
    own = api.call("post", "/cases", "worker", {"process_key": "grid_matter", "data": {"title": "井盖缺失"}})
    assert own.status_code == 201 and own.json["grid_code"] == GRID
    assert own.headers["Location"].endswith(f"/cases/{own.json['id']}")
    unknown = api.call("post", "/cases", "worker", {"process_key": "no_such_process"})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "not_found"
    refused = api.call("post", "/cases", "platform",
                       {"process_key": "grid_matter", "data": {"grid_code": GRID, "sub_category": "administrative_penalty"}})
    assert refused.status_code == 422, refused.json


@pytest.mark.parametrize("request_, status, code", [
    (dict(method="post", path="/cases", data="{not json", content_type="application/json"), 400, "bad_request"),
    (dict(method="post", path="/cases", data="process_key=x", content_type="text/plain"), 415,
     "unsupported_media_type"),
    (dict(method="post", path="/cases", json={"process_key": "grid_matter", "surprise": 1}), 422,
     "validation_failed"),
    (dict(method="post", path="/cases", json={"process_key": "grid_matter", "data": {"t": "x" * (2 * 1024 * 1024)}}),
     413, "payload_too_large"),
    (dict(method="delete", path="/cases"), 405, "method_not_allowed"),
    (dict(method="get", path="/cases/123456789012345678901"), 404, "not_found"),
    (dict(method="get", path="/cases/2147483648"), 404, "not_found"),
    (dict(method="get", path="/cases?page=99999999999"), 422, "validation_failed"),
    (dict(method="get", path="/cases?overdue=perhaps"), 422, "validation_failed"),
    (dict(method="get", path="/nowhere"), 404, "not_found"),
])
def test_errors_have_one_shape(api, request_, status, code):
    request_ = dict(request_)
    method, path = request_.pop("method"), request_.pop("path")
    response = getattr(api.client, method)(path, headers=bearer("platform"), **request_)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.json["error"]
    assert error["code"] == code and error["message"]["zh"] and error["message"]["en"]
    assert "Traceback" not in response.get_data(as_text=True)
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_tokens_refused_clearly(api):
    cases = [({}, "send `Authorization"), ({"Authorization": "Basic abc"}, "Bearer"),
             ({"Authorization": "Bearer nonsense"}, "not valid"), ({"Authorization": "Bearer gfk_unknown"}, "unknown")]
    for headers, words in cases:
        response = api.client.get("/cases", headers=headers)
        assert response.status_code == 401 and words in response.json["error"]["message"]["en"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_foreign_tokens(api):
    from datetime import datetime, timedelta, timezone

    from api.http.auth import issue_token
    from engine.access.scopes import Principal
    old = issue_token(Principal("w", "grid_worker", grid_code=GRID), "k" * 40 + "x",
                      now=datetime.now(timezone.utc) - timedelta(days=2))
    assert api.client.get("/cases", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    from .api_fixtures import JWT_KEY
    expired = issue_token(Principal("w", "grid_worker", grid_code=GRID), JWT_KEY,
                          now=datetime.now(timezone.utc) - timedelta(days=2))
    response = api.client.get("/cases", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json["error"]["message"]["zh"] == "身份令牌已过期"


def test_api_key_for_the_platform_and_revocation(api):
    key, view = api.engine.api_keys.create("hotline bridge", user="12345-bridge", by="admin")
    started = api.client.post("/cases", headers={"Authorization": f"Bearer {key}"},
                              json={"process_key": "grid_matter", "data": {"grid_code": GRID, "title": "热线工单"}})
    assert started.status_code == 201
    event = api.engine.queries.history(started.json["id"])[0]
    assert (event.actor, event.role) == ("12345-bridge", "platform")
    api.engine.api_keys.revoke(view.id)
    api.client.application.extensions["gridflow.api_keys"].ttl = 0  # no cached acceptance in this test
    api.client.application.extensions["gridflow.api_keys"]._found.clear()
    assert api.client.get("/cases", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_health_and_metrics(api):
    assert api.client.get("/health").json == {"status": "ok", "database": True}
    api.walk_to_handle()
    assert api.call("get", "/metrics", "worker").status_code == 403
    text = api.call("get", "/metrics", "platform").get_data(as_text=True)
    assert "gridflow_open_cases 1.0" in text and "gridflow_overdue_cases 0.0" in text
    assert 'gridflow_http_request_seconds_count{endpoint="/cases",method="POST",status="201"}' in text
    assert "gridflow_timer_lag_seconds" in text and "gridflow_pending_timers 1.0" in text
    assert 'gridflow_commands_total{command="tasks.Complete",outcome="ok"}' in text
