"""Role × endpoint × expected status, on one prepared case: a matter reported in GRID by the worker,
filed by the community agency and dispatched to UNIT. Refusals change nothing, so the rows share the
case; the allowed commands are walked in test_api_cases. 404 means "not in your scope": a case outside
it is not revealed to exist."""
from __future__ import annotations

import pytest

from api.http.auth import issue_token
from engine.access.scopes import Principal
from engine.clock import FixedClock
from engine.service import Engine

from .api_fixtures import GRID, JWT_KEY, OTHER_GRID, PRINCIPALS, make_api
from .conftest import T0

C, H = "{case}", "{handle}"  # filled in with the prepared case and its handle task
# The county government sees only its county's matter list changes (test_api_matter_lists), no grid matter.
PEOPLE = {**PRINCIPALS, "county_gov": Principal("红旗区人民政府", "county_government", area_code=GRID[:6])}
ALL = sorted(PEOPLE)

READ_SCOPE = {  # who sees the prepared case
    "worker": 200, "worker_other": 404, "agency": 200, "agency_other": 404, "agency_township": 200,
    "agency_other_county": 404, "unit": 200, "unit_other": 404, "admin": 403, "auditor": 200, "platform": 200,
    "county_gov": 404,
}
LISTS = {**{who: 200 for who in ALL}, "admin": 403}


def _row(method, path, expected: dict, body=None):
    """`None`: not in the table (the allowed command would change the case the other rows share)."""
    return [(method, path, who, expected[who], body) for who in ALL if expected[who] is not None]


def _only(allowed: dict, default: int) -> dict:
    return {who: allowed.get(who, default) for who in ALL}


TABLE = [
    *_row("get", "/cases", LISTS),
    *_row("get", f"/cases/{C}", READ_SCOPE),
    *_row("get", f"/cases/{C}/history", READ_SCOPE),
    *_row("get", "/tasks", LISTS),
    *_row("get", f"/tasks/{H}", READ_SCOPE),
    # Acting on the unit's task: only UNIT may; others who see it are forbidden, the rest do not find it.
    *_row("post", f"/tasks/{H}/sign", _only({"worker": 403, "agency": 403, "agency_township": 403,
                                              "unit": 200}, 404) | {"admin": 403, "auditor": 403,
                                                                     "platform": 403, "county_gov": 403}),
    *_row("post", f"/tasks/{H}/extension/decision", _only({"agency": 422, "agency_township": 403}, 404)
          | {"worker": 403, "unit": 403, "unit_other": 403, "worker_other": 403, "admin": 403, "auditor": 403,
             "platform": 403, "county_gov": 403}, {"approve": True}),
    *_row("post", f"/tasks/{H}/return", _only({"worker": 403, "agency": 403, "agency_township": 403,
                                                "unit": None}, 404)
          | {"admin": 403, "auditor": 403, "platform": 403, "county_gov": 403}, {"reason": "不属本单位职责"}),
    *_row("post", f"/tasks/{H}/complete", _only({"worker": 403, "agency": 403, "agency_township": 403,
                                                  "unit": None}, 404)
          | {"admin": 403, "auditor": 403, "platform": 403}, {"data": {"result": "x"}}),
    *_row("post", f"/tasks/{H}/extension", _only({"unit": None}, 403) | {"unit_other": 404},
          {"days": 2, "reason": "r"}),
    *_row("post", f"/tasks/{H}/reminder", _only({"agency": 200, "agency_township": 403}, 403)
          | {"agency_other": 404, "agency_other_county": 404}, {"note": "请按期办结"}),
    *_row("post", f"/cases/{C}/supervision", _only({"agency": 403, "agency_township": 200}, 403)
          | {"agency_other": 404, "agency_other_county": 404}, {"card": "normal"}),
    *_row("post", f"/cases/{C}/messages", _only({"platform": 422}, 403), {"name": "resident_follow_up"}),
    *_row("post", "/messages", _only({"platform": 422}, 403), {"case_id": 1, "name": "resident_follow_up"}),
    # No grid named: a worker's own grid is taken; the platform names one (a third grid of the sample registry).
    *_row("post", "/cases", _only({"worker": 201, "worker_other": 201, "platform": None}, 403),
          {"process_key": "grid_matter"}),
    *_row("post", "/cases", {**{who: None for who in ALL}, "platform": 201},
          {"process_key": "grid_matter", "data": {"grid_code": "410702001001U003"}}),
    *_row("get", "/metrics", _only({"admin": 200, "auditor": 200, "platform": 200}, 403)),
    *_row("get", "/health", _only({}, 200)),
]
# The unit signs for the task after every refusal above (its row comes last among the mutations that
# succeed), so that the states the refusals met are the dispatched ones.
TABLE.sort(key=lambda row: row[3] in (200, 201) and row[0] == "post")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    engine = Engine(f"sqlite:///{tmp_path_factory.mktemp('roles') / 'gridflow.db'}")
    api = make_api(engine, FixedClock(T0))
    case_id, handle = api.walk_to_handle()
    yield api, case_id, handle
    engine.close()


@pytest.mark.parametrize("method, path, who, status, body", TABLE,
                         ids=[f"{m.upper()} {p} as {w} -> {s}" for m, p, w, s, _ in TABLE])
def test_role_table(prepared, method, path, who, status, body):
    api, case_id, handle = prepared
    url = path.replace(C, str(case_id)).replace(H, str(handle))
    if body is not None and "case_id" in body:
        body = {**body, "case_id": case_id}
    response = api.call(method, url, json=body if method == "post" else None,
                        headers={"Authorization": f"Bearer {issue_token(PEOPLE[who], JWT_KEY)}"})
    assert response.status_code == status, (who, url, response.get_data(as_text=True)[:400])
    if status >= 400:
        assert response.json["error"]["code"] and response.json["error"]["message"]["zh"]


def test_no_token_is_401_everywhere_but_health(prepared):
    api, case_id, handle = prepared
    for method, path, *_ in TABLE:
        url = path.replace(C, str(case_id)).replace(H, str(handle))
        response = getattr(api.client, method)(url, json={} if method == "post" else None)
        assert response.status_code == (200 if url == "/health" else 401), url


def test_counts_never_reveal_other_grids(prepared):
    api, _, _ = prepared
    api.call("post", "/cases", "platform", {"process_key": "grid_matter", "data": {"grid_code": OTHER_GRID}})
    seen = {who: api.call("get", "/cases?per_page=1", who).json["total"] for who in ("worker", "worker_other")}
    everything = api.call("get", "/cases", "auditor").json
    per_grid = {grid: sum(1 for c in everything["items"] if c["grid_code"] == grid) for grid in (GRID, OTHER_GRID)}
    assert seen == {"worker": per_grid[GRID], "worker_other": per_grid[OTHER_GRID]}
    assert per_grid[OTHER_GRID] >= 2 and everything["total"] > sum(per_grid.values())  # and cases of no grid
