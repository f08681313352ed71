"""What the API tests share: an app on a real engine, principals of every role, and a case walked to the
responsible unit's handling task."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from api.http.app import create_app
from api.http.auth import issue_token
from engine.access.scopes import Principal

from engine.clock import FixedClock

from .conftest import T0, grid_matter_upload, registered

JWT_KEY = "test-signing-key-0123456789abcdef0123456789"
GRID = "410702001001U001"
OTHER_GRID = "410702001002U001"
UNIT = "hq_chengguan"

PRINCIPALS = {
    "worker": Principal("王网格", "grid_worker", grid_code=GRID),
    "worker_other": Principal("赵网格", "grid_worker", grid_code=OTHER_GRID),
    "agency": Principal("东风社区网格站", "grid_agency", level="community", area_code=GRID[:12]),
    "agency_other": Principal("西湖社区网格站", "grid_agency", level="community", area_code=OTHER_GRID[:12]),
    "agency_township": Principal("街道网格中心", "grid_agency", level="township", area_code=GRID[:9]),
    "agency_other_county": Principal("别县中心", "grid_agency", level="county", area_code="410703"),
    "unit": Principal("区城管局", "responsible_unit", unit=UNIT),
    "unit_other": Principal("区执法大队", "responsible_unit", unit="hq_zhifa_001"),
    "admin": Principal("流程管理员", "process_admin"),
    "auditor": Principal("纪检组", "auditor"),
    "platform": Principal("city-platform", "platform"),
}

REPORTER = {"name": "李秀英", "phone": "13800000001", "id_number": "410702199001011234",
            "address": "红旗区东风街道幸福小区3号楼"}


def bearer(who: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(PRINCIPALS[who], JWT_KEY)}"}


@dataclass
class Api:
    client: object
    engine: object

    def call(self, method: str, path: str, who: str | None = None, json=None, headers=None, **kwargs):
        all_headers = dict(bearer(who) if who else {}, **(headers or {}))
        return getattr(self.client, method)(path, json=json, headers=all_headers, **kwargs)

    def task_of(self, case_id: int, element: str) -> int:
        return next(t.id for t in self.engine.queries.tasks(case_id=case_id) if t.element_id == element)

    def walk_to_handle(self, **data) -> tuple[int, int]:
        """A matter reported by the worker, filed by the community agency and dispatched to UNIT;
        returns the case id and its `handle` task id."""
        started = self.call("post", "/cases", "worker",
                            {"process_key": "grid_matter", "data": {"title": "路灯损坏", "category": "民生事项服务",
                                                                    "sub_category": "road_lighting",
                                                                    "reporter": REPORTER, **data}})
        assert started.status_code == 201, started.json
        case_id = started.json["id"]
        steps = [("verify_register", "worker", {"verified": True, "within_authority": False}),
                 ("accept_report", "agency", {"decision": "file"}),
                 ("dispatch", "agency", {"unit": UNIT, "handling_days": 3})]
        for element, who, form in steps:
            done = self.call("post", f"/tasks/{self.task_of(case_id, element)}/complete", who, {"data": form})
            assert done.status_code == 200, done.json
        return case_id, self.task_of(case_id, "handle")


def make_api(engine, clock=None) -> Api:
    clock = clock or FixedClock(T0)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    app = create_app(engine, {"GRIDFLOW_JWT_KEY": JWT_KEY, "GRIDFLOW_CLOCK": clock})
    return Api(app.test_client(), engine)


@pytest.fixture
def api(engine):
    return make_api(engine)
