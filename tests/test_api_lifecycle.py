"""The statutory lifecycle over HTTP, on SQLite and PostgreSQL: registry-checked intake and dispatch, the
city level, suspension, staged feedback, joint handling, duplicates and withdrawal; every refusal in the
one error shape with the same detail in Chinese and English."""
from __future__ import annotations

from api.http.auth import issue_token
from engine.access.scopes import Principal

from .api_fixtures import GRID, JWT_KEY, api  # noqa: F401  (fixture)

MATTER = {"title": "路灯损坏", "category": "民生事项服务", "sub_category": "road_lighting"}


def as_unit(unit: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(Principal(unit, 'responsible_unit', unit=unit), JWT_KEY)}"}


def refused(response, code="invalid_command", *, en: str, zh: str | None = None):
    assert response.status_code in (403, 404, 422), response.json
    error = response.json["error"]
    assert error["code"] == code and en in error["message"]["en"], error
    assert zh is None or zh in error["message"]["zh"], error
    return error


def report(api, who="platform", **data):
    return api.call("post", "/cases", who, {"process_key": "grid_matter", "data": {**MATTER, "grid_code": GRID,
                                                                                 **data}})


def to_dispatch(api, case_id):
    for element, who, form in (("verify_register", "worker", {"verified": True, "within_authority": False}),
                               ("accept_report", "agency", {"decision": "file"})):
        done = api.call("post", f"/tasks/{api.task_of(case_id, element)}/complete", who, {"data": form})
        assert done.status_code == 200, done.json
    return api.task_of(case_id, "dispatch")


def test_intake_names_a_grid_in_force_and_dispatch_registered_units(api):
    for grid, en in (("NOPE", "not a grid code"), ("410702001001U099", "not in the registry")):
        error = refused(report(api, grid_code=grid), en=en)
        assert grid in error["message"]["zh"]   # the Chinese message carries the detail too
    case_id = report(api).json["id"]
    dispatch = to_dispatch(api, case_id)
    error = refused(api.call("post", f"/tasks/{dispatch}/complete", "agency",
                             {"data": {"unit": "hq_ludeng", "assisting_units": ["ghost"], "handling_days": 2}}),
                    en="not registered units", zh="条例第十六条")
    assert "ghost" in error["message"]["zh"]
    unclassified = report(api, sub_category=None).json["id"]
    verify = api.task_of(unclassified, "verify_register")
    refused(api.call("post", f"/tasks/{verify}/complete", "worker",
                     {"data": {"verified": True, "within_authority": False}}),
            en="registered with its sub-category", zh="事项小类")


def agency(level: str, area: str) -> dict:
    return {"Authorization": "Bearer " + issue_token(Principal(f"{level} 网格中心", "grid_agency", level=level,
                                                               area_code=area), JWT_KEY)}


def test_escalation_stops_at_the_city(api):
    case_id = report(api).json["id"]
    api.call("post", f"/tasks/{api.task_of(case_id, 'verify_register')}/complete", "worker",
             {"data": {"verified": True, "within_authority": False}})
    for level, area in (("community", GRID[:12]), ("township", GRID[:9]), ("county", GRID[:6])):
        done = api.call("post", f"/tasks/{api.task_of(case_id, 'accept_report')}/complete", None,
                        {"data": {"decision": "escalate"}}, headers=agency(level, area))
        assert done.status_code == 200, done.json
    task = api.task_of(case_id, "accept_report")
    city = agency("city", "410700")
    refused(api.call("post", f"/tasks/{task}/complete", None, {"data": {"decision": "escalate"}}, headers=city),
            en="top level", zh="第十七条")
    filed = api.call("post", f"/tasks/{task}/complete", None, {"data": {"decision": "file"}}, headers=city)
    assert filed.status_code == 200, filed.json
    dispatched = api.call("post", f"/tasks/{api.task_of(case_id, 'dispatch')}/complete", None,
                          {"data": {"handling_days": 3}}, headers=city)
    assert dispatched.status_code == 200 and dispatched.json["status"] == "dispatched", dispatched.json
    assert [t["unit"] for t in dispatched.json["open_tasks"] if t["element_id"] == "handle"] == ["xx_chengguan"]


def test_suspend_resume_and_withdraw(api):
    case_id, handle = api.walk_to_handle()
    refused(api.call("post", f"/cases/{case_id}/suspension", "agency", {"reason": ""}), "validation_failed",
            en="validation")
    assert api.call("post", f"/cases/{case_id}/suspension", "unit", {"reason": "x"}).status_code == 403
    suspended = api.call("post", f"/cases/{case_id}/suspension", "agency", {"reason": "待管网改造"})
    assert suspended.status_code == 200 and suspended.json["status"] == "suspended", suspended.json
    assert suspended.json["suspended_at"]
    resumed = api.call("post", f"/cases/{case_id}/resumption", "agency", {})
    assert resumed.status_code == 200 and resumed.json["status"] == "dispatched", resumed.json
    refused(api.call("post", f"/cases/{case_id}/withdrawal", "platform", {"reason": "上报人撤回"}),
            en="only the agency", zh="只能由")
    withdrawn = api.call("post", f"/cases/{case_id}/withdrawal", "agency", {"reason": "经核实重复"})
    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "cancelled"
    commands = [e["command"] for e in api.call("get", f"/cases/{case_id}/history", "auditor").json["events"]]
    assert commands[-3:] == ["suspend", "resume", "withdraw"]
    assert api.engine.audit.replay(case_id).divergence is None


def test_staged_feedback_and_joint_handling(api):
    case_id = report(api).json["id"]
    dispatch = to_dispatch(api, case_id)
    done = api.call("post", f"/tasks/{dispatch}/complete", "agency",
                    {"data": {"unit": "hq_chengguan", "assisting_units": ["hq_power"], "handling_days": 3}})
    assert done.status_code == 200, done.json
    assist = api.task_of(case_id, "assist")
    handle = api.task_of(case_id, "handle")
    # The assisting unit sees and acts on its own task only.
    assert api.call("post", f"/tasks/{assist}/sign", "unit").status_code in (403, 404)
    assert api.call("post", f"/tasks/{assist}/sign", None, headers=as_unit("hq_power")).status_code == 200
    fed = api.call("post", f"/tasks/{assist}/complete", None, {"data": {"result": "线路已抢修"}},
                   headers=as_unit("hq_power"))
    assert fed.status_code == 200 and fed.json["status"] == "dispatched", fed.json
    api.call("post", f"/tasks/{handle}/sign", "unit")
    staged = api.call("post", f"/tasks/{handle}/complete", "unit", {"data": {"result": "已勘查", "final": False}})
    assert staged.status_code == 200 and staged.json["status"] == "in_progress", staged.json
    final = api.call("post", f"/tasks/{handle}/complete", "unit", {"data": {"result": "已更换", "final": True}})
    assert final.status_code == 200 and final.json["status"] == "verifying", final.json
    commands = [e["command"] for e in api.call("get", f"/cases/{case_id}/history", "auditor").json["events"]]
    assert "progress" in commands
    assert api.engine.audit.replay(case_id).divergence is None


def test_duplicates_are_suggested_and_linked(api):
    master = report(api).json["id"]
    duplicate = report(api).json["id"]
    candidates = api.call("get", f"/cases/{duplicate}/duplicate-candidates", "platform")
    assert candidates.status_code == 200 and [c["id"] for c in candidates.json] == [master]
    refused(api.call("post", f"/cases/{duplicate}/duplicate-of", "platform", {"master_id": 9999}), "not_found",
            en="no case")
    linked = api.call("post", f"/cases/{duplicate}/duplicate-of", "platform", {"master_id": master})
    assert linked.status_code == 200 and linked.json["duplicate_of"] == master and linked.json["open_tasks"] == []
    again = api.call("post", f"/cases/{duplicate}/duplicate-of", "platform", {"master_id": master})
    refused(again, en="duplicate of case", zh="重复件")
    assert api.engine.audit.replay(duplicate).divergence is None


def test_urgent_over_http(api):
    case_id, _ = api.walk_to_handle()
    assert api.call("post", f"/cases/{case_id}/urgency", "unit", {"urgency": "urgent", "reason": "x"}).status_code == 403
    refused(api.call("post", f"/cases/{case_id}/urgency", "agency", {"urgency": "soon", "reason": "x"}),
            "validation_failed", en="validation")
    raised = api.call("post", f"/cases/{case_id}/urgency", "agency", {"urgency": "urgent", "reason": "夜间安全"})
    assert raised.status_code == 200, raised.json
    assert api.engine.audit.replay(case_id).divergence is None
