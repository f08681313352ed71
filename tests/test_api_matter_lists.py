"""County matter lists over HTTP (条例 §13): reading lists, applying for a change (JSON or a file), the
county grid agency's review and the county government's agreement through the task endpoints, a grid
worker's refusal of off-list work — and who may do each (all seven roles and no token)."""
from __future__ import annotations

import csv
import io

import pytest

from api.http.auth import issue_token
from engine.access.scopes import Principal
from engine.clock import FixedClock
from engine.service import Engine

from .api_fixtures import GRID, JWT_KEY, PRINCIPALS, make_api
from .conftest import PROCESSES, T0

COUNTY = "410702"
ON_LIST = ["population_info_update", "public_opinion", "road_lighting", "water_supply_outage"]
PEOPLE = {
    **PRINCIPALS,
    "county_agency": Principal("红旗区网格化服务管理中心", "grid_agency", level="county", area_code=COUNTY),
    "county_gov": Principal("红旗区人民政府", "county_government", area_code=COUNTY),
    "county_gov_other": Principal("卫滨区人民政府", "county_government", area_code="410703"),
    "service_unit": Principal("红旗区供水公司", "responsible_unit", unit="hq_water"),
}
ALL = sorted(PEOPLE)
APPLICATION = {"version": "2026.1", "effective_from": "2026-11-01", "reason": "初次制定（条例第十三条）",
               "add": ON_LIST, "temporary": [{"sub_category": "heating_failure", "expires_on": "2027-03-16",
                                              "reason": "供暖季临时准入"}]}


def auth(who: str | None) -> dict:
    return {"Authorization": f"Bearer {issue_token(PEOPLE[who], JWT_KEY)}"} if who else {}


def call(api, method, path, who, json=None, headers=None, **kwargs):
    return getattr(api.client, method)(path, json=json, headers={**auth(who), **(headers or {})}, **kwargs)


def lists_api(engine):
    clock = FixedClock(T0)
    api = make_api(engine, clock)
    engine.definitions.deploy({"matter_list_change.bpmn": (PROCESSES / "matter_list_change.bpmn").read_bytes()},
                              "admin", clock)
    return api


def open_task(api, case_id):
    (task,) = api.engine.queries.case(case_id).open_tasks
    return task


def apply(api, who="unit", **change):
    response = call(api, "post", f"/matter-lists/{COUNTY}/changes", who, {**APPLICATION, **change})
    assert response.status_code == 201, response.json
    return response.json["id"]


def adopt(api, **change):
    case_id = apply(api, **change)
    for who, form in (("county_agency", {"accepted": True}), ("county_gov", {"approved": True})):
        done = call(api, "post", f"/tasks/{open_task(api, case_id).id}/complete", who, {"data": form})
        assert done.status_code == 200, done.json
    return case_id


# ---- end to end (SQLite and PostgreSQL) -------------------------------------------------------------------

def test_a_department_applies_the_county_agency_reviews_the_government_agrees_and_the_list_is_in_force(engine):
    api = lists_api(engine)
    assert call(api, "get", f"/matter-lists/{COUNTY}", "worker").status_code == 404   # nothing filed yet

    applied = call(api, "post", f"/matter-lists/{COUNTY}/changes", "unit", APPLICATION,
                   headers={"Idempotency-Key": "apply-1"})
    assert applied.status_code == 201, applied.json
    case_id = applied.json["id"]
    assert applied.headers["Location"].endswith(f"/cases/{case_id}")
    again = call(api, "post", f"/matter-lists/{COUNTY}/changes", "unit", APPLICATION,
                 headers={"Idempotency-Key": "apply-1"})
    assert (again.status_code, again.json["id"], again.headers["Idempotent-Replayed"]) == (201, case_id, "true")
    assert applied.json["status"] == "applied" and applied.json["grid_code"] == COUNTY
    assert applied.json["data"]["applicant"] == "hq_chengguan" and applied.json["unit"] == "hq_chengguan"
    (review,) = applied.json["open_tasks"]
    assert (review["element_id"], review["role"], review["agency_level"], review["grid_code"]) == \
        ("review_change", "grid_agency", "county", COUNTY)

    # The county agency finds it among its tasks; the government has nothing to do yet.
    assert [t["id"] for t in call(api, "get", "/tasks", "county_agency").json["items"]] == [review["id"]]
    assert call(api, "get", "/tasks", "county_gov").json["items"] == []
    assert call(api, "get", "/tasks", "agency_township").json["total"] == 0   # 410702001 is not the county
    reviewed = call(api, "post", f"/tasks/{review['id']}/complete", "county_agency",
                    {"data": {"accepted": True, "opinion": "符合准入分类目录"}})
    assert reviewed.status_code == 200, reviewed.json
    assert reviewed.json["status"] == "reviewed"

    (agreement,) = call(api, "get", "/tasks", "county_gov").json["items"]
    assert (agreement["element_id"], agreement["role"]) == ("approve_change", "county_government")
    assert call(api, "post", f"/tasks/{agreement['id']}/complete", "county_gov_other",
                {"data": {"approved": True}}).status_code == 404
    agreed = call(api, "post", f"/tasks/{agreement['id']}/complete", "county_gov",
                  {"data": {"approved": True, "opinion": "同意"}})
    assert agreed.status_code == 200, agreed.json
    assert agreed.json["status"] == "filed" and agreed.json["open_tasks"] == []

    in_force = call(api, "get", f"/matter-lists/{COUNTY}?on=2026-11-05", "worker").json
    assert (in_force["version"], in_force["effective_from"]) == ("2026.1", "2026-11-01")
    assert [m["code"] for m in in_force["matters"]] == ON_LIST
    assert in_force["matters"][2]["name"] == "路灯不亮"
    assert [(t["code"], t["expires_on"], t["in_force"]) for t in in_force["temporary"]] == \
        [("heating_failure", "2027-03-16", True)]
    later = call(api, "get", f"/matter-lists/{COUNTY}?on=2027-03-20", "worker").json
    assert later["temporary"][0]["in_force"] is False
    assert call(api, "get", f"/matter-lists/{COUNTY}?on=2026-10-31", "worker").status_code == 404

    versions = call(api, "get", f"/matter-lists?county={COUNTY}", "platform").json["items"]
    assert [(v["version"], v["case_id"], v["sub_categories"], v["temporary"]) for v in versions] == \
        [("2026.1", case_id, 4, 1)]
    # Who follows the case: the applicant, the county's agency and government; not another county's.
    for who, status in (("unit", 200), ("county_agency", 200), ("county_gov", 200), ("county_gov_other", 404),
                        ("agency_township", 404), ("worker", 404), ("unit_other", 404)):
        assert call(api, "get", f"/cases/{case_id}", who).status_code == status, who
    assert [c["id"] for c in call(api, "get", "/cases", "county_gov").json["items"]] == [case_id]
    history = call(api, "get", f"/cases/{case_id}/history", "county_gov").json
    assert history["chain_intact"] and [e["role"] for e in history["events"]] == \
        ["responsible_unit", "grid_agency", "county_government"]


def test_a_change_from_the_exported_file_and_a_rejection_at_review(engine):
    api = lists_api(engine)
    adopt(api)
    exported = call(api, "get", f"/matter-lists/{COUNTY}/export", "unit")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["code", "name", "category", "admission", "expires_on", "reason"]
    kept = [r for r in rows if r[0] != "public_opinion"] + [["power_outage", "", "", "permanent", "", ""]]
    edited = io.StringIO()
    csv.writer(edited).writerows(kept)

    applied = call(api, "post", f"/matter-lists/{COUNTY}/changes", "county_agency",
                   data={"version": "2026.2", "effective_from": "2026-12-01", "reason": "调整舆情收集职责",
                         "file": (io.BytesIO(edited.getvalue().encode("utf-8-sig")), "list.csv")},
                   content_type="multipart/form-data")
    assert applied.status_code == 201, applied.json
    data = applied.json["data"]
    assert (data["add"], data["remove"], data["applicant"]) == (["power_outage"], ["public_opinion"],
                                                                 "红旗区网格化服务管理中心")
    refused = call(api, "post", f"/tasks/{applied.json['open_tasks'][0]['id']}/complete", "county_agency",
                   {"data": {"accepted": False, "opinion": "理由不充分"}})
    assert refused.status_code == 200 and refused.json["status"] == "rejected"
    assert [v["version"] for v in call(api, "get", "/matter-lists", "worker").json["items"]] == ["2026.1"]

    bad_file = call(api, "post", f"/matter-lists/{COUNTY}/changes", "unit",
                    data={"version": "2026.3", "effective_from": "2026-12-01", "reason": "r",
                          "file": (io.BytesIO(b"code,admission\nroad_lighting,sometimes\n"), "list.csv")},
                    content_type="multipart/form-data")
    assert bad_file.status_code == 422 and "row 2" in bad_file.json["error"]["message"]["en"]
    no_file = call(api, "post", f"/matter-lists/{COUNTY}/changes", "unit",
                   data={"version": "2026.3", "effective_from": "2026-12-01", "reason": "r"},
                   content_type="multipart/form-data")
    assert no_file.status_code == 422 and "file" in no_file.json["error"]["details"]["files"]


@pytest.mark.parametrize("change, where, words", [
    ({"reason": ""}, "json", "reason"),
    ({"effective_from": "next week"}, "json", "effective_from"),
    ({"add": ["administrative_licensing_decision"]}, None, "第十四条"),
    ({"add": ["no_such_matter"]}, None, "no_such_matter"),
    ({"add": [], "temporary": []}, None, "changes nothing"),
])
def test_an_application_that_could_never_be_adopted_is_refused_with_every_reason(tmp_path, change, where, words):
    engine = Engine(f"sqlite:///{tmp_path / 'gridflow.db'}")
    api = lists_api(engine)
    response = call(api, "post", f"/matter-lists/{COUNTY}/changes", "unit", {**APPLICATION, **change})
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert words in (str(error["details"][where]) if where else error["message"]["en"])
    assert api.engine.queries.cases() == []   # nothing started
    engine.close()


def test_a_grid_worker_refuses_off_list_work_over_http(engine):
    api = lists_api(engine)
    adopt(api)
    off_list = {"title": "拖欠工资", "sub_category": "wage_arrears"}
    # Nobody may hand it to the worker (条例 §13)...
    by_platform = call(api, "post", "/cases", "platform",
                       {"process_key": "grid_matter", "data": {**off_list, "grid_code": GRID}})
    assert by_platform.status_code == 422 and "第十三条" in by_platform.json["error"]["message"]["en"]
    # ...and when he has it (he collected it himself), he may refuse it, with a reason.
    started = call(api, "post", "/cases", "worker", {"process_key": "grid_matter", "data": off_list})
    assert started.status_code == 201, started.json
    task_id = started.json["open_tasks"][0]["id"]
    assert call(api, "post", f"/tasks/{task_id}/refusal", "worker", {"reason": ""}).status_code == 422
    assert call(api, "post", f"/tasks/{task_id}/refusal", "worker_other", {"reason": "x"}).status_code == 404
    assert call(api, "post", f"/tasks/{task_id}/refusal", "agency", {"reason": "x"}).status_code == 403
    refused = call(api, "post", f"/tasks/{task_id}/refusal", "worker", {"reason": "欠薪不在清单内，请转人社部门"})
    assert refused.status_code == 200, refused.json
    assert refused.json["status"] == "not_filed" and refused.json["open_tasks"] == []
    last = call(api, "get", f"/cases/{started.json['id']}/history", "auditor").json["events"][-1]
    assert (last["command"], last["actor"], last["payload"]["reason"]) == ("refuse", "王网格", "欠薪不在清单内，请转人社部门")
    assert "第十三条" in last["effects"]["refusal"]

    on_list = call(api, "post", "/cases", "worker",
                   {"process_key": "grid_matter", "data": {"title": "路灯不亮", "sub_category": "road_lighting"}})
    not_refusable = call(api, "post", f"/tasks/{on_list.json['open_tasks'][0]['id']}/refusal", "worker",
                         {"reason": "不想做"})
    assert not_refusable.status_code == 422
    assert "is on the grid matter list" in not_refusable.json["error"]["message"]["en"]


# ---- who may do what ------------------------------------------------------------------------------------

A, R, K = "{application}", "{review}", "{agreement}"
EVERYONE = {who: 200 for who in ALL}


def _row(method, path, expected: dict, body=None):
    return [(method, path, who, expected[who], body) for who in ALL]


def _only(allowed: dict, default: int) -> dict:
    return {who: allowed.get(who, default) for who in ALL}


# Allowed callers get 422 where the body is incomplete on purpose: they passed the role and scope checks
# without changing the cases the rows share.
TABLE = [
    *_row("get", "/matter-lists", EVERYONE),
    *_row("get", f"/matter-lists/{COUNTY}", EVERYONE),
    *_row("get", f"/matter-lists/{COUNTY}/export", EVERYONE),
    *_row("post", f"/matter-lists/{COUNTY}/changes", _only({"unit": 422, "unit_other": 422, "county_agency": 422},
                                                            403), {"version": "2027.1"}),
    # review_change: the county agency's; the applicant and the government see the case but may not act.
    *_row("post", f"/tasks/{R}/complete", _only({"county_agency": 422, "unit": 403, "county_gov": 403,
                                                 "admin": 403, "auditor": 403, "platform": 403}, 404),
          {"data": {}}),
    *_row("post", f"/tasks/{K}/complete", _only({"county_gov": 422, "county_agency": 403, "unit": 403,
                                                 "admin": 403, "auditor": 403, "platform": 403}, 404),
          {"data": {}}),
    *_row("get", f"/cases/{A}", _only({"unit": 200, "county_agency": 200, "county_gov": 200, "auditor": 200,
                                       "platform": 200, "admin": 403}, 404)),
    *_row("post", f"/tasks/{R}/refusal", _only({"worker": 404, "worker_other": 404}, 403), {"reason": "x"}),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    engine = Engine(f"sqlite:///{tmp_path_factory.mktemp('lists') / 'gridflow.db'}")
    api = lists_api(engine)
    adopt(api)
    at_review = apply(api, version="2027.1", effective_from="2027-01-01", add=["power_outage"], temporary=[])
    at_agreement = apply(api, version="2027.2", effective_from="2027-02-01", add=["power_outage"], temporary=[])
    done = call(api, "post", f"/tasks/{open_task(api, at_agreement).id}/complete", "county_agency",
                {"data": {"accepted": True}})
    assert done.status_code == 200
    yield api, {A: at_review, R: open_task(api, at_review).id, K: open_task(api, at_agreement).id}
    engine.close()


def _url(path: str, ids: dict) -> str:
    for marker, value in ids.items():
        path = path.replace(marker, str(value))
    return path


@pytest.mark.parametrize("method, path, who, status, body", TABLE,
                         ids=[f"{m.upper()} {p} as {w} -> {s}" for m, p, w, s, _ in TABLE])
def test_role_table(prepared, method, path, who, status, body):
    api, ids = prepared
    url = _url(path, ids)
    response = call(api, method, url, who, json=body if method == "post" else None)
    assert response.status_code == status, (who, url, response.get_data(as_text=True)[:400])
    if status >= 400:
        assert response.json["error"]["code"] and response.json["error"]["message"]["zh"]


def test_no_token_is_401_everywhere(prepared):
    api, ids = prepared
    for method, path in {(m, p) for m, p, *_ in TABLE}:
        response = call(api, method, _url(path, ids), None, json={} if method == "post" else None)
        assert response.status_code == 401, path


def test_a_service_company_or_another_county_may_not_apply(prepared):
    api, _ = prepared
    for who, path in (("service_unit", f"/matter-lists/{COUNTY}/changes"),
                      ("county_agency", "/matter-lists/410703/changes"),
                      ("agency_other_county", f"/matter-lists/{COUNTY}/changes")):
        response = call(api, "post", path, who, APPLICATION)
        assert response.status_code == 403, (who, response.json)
    assert "有关部门" in call(api, "post", f"/matter-lists/{COUNTY}/changes", "service_unit",
                            APPLICATION).json["error"]["message"]["en"]
    assert call(api, "post", "/matter-lists/4107/changes", "unit", APPLICATION).status_code == 422
