"""The auditor's endpoints (条例 §22) over HTTP: verify chains against signed checkpoints, sign one (only
with the server's key), replay, a case as of a moment (for every role that may read it, personal data
hidden unless revealed, and every reveal logged), the dossier as JSON and HTML — and who may do each."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.http.app import create_app
from api.http.auth import issue_token
from engine.access.scopes import Principal
from engine.audit.asof import HIDDEN
from engine.audit.trail import KEY_ENV, generate_key
from engine.clock import FixedClock
from engine.store.models import HistoryEvent
from engine.service import Engine

from .api_fixtures import JWT_KEY, PRINCIPALS, REPORTER, UNIT, make_api
from .conftest import T0

PEOPLE = {**PRINCIPALS, "county_gov": Principal("红旗区人民政府", "county_government", area_code="410702")}
ALL = sorted(PEOPLE)


def auth(who: str | None) -> dict:
    return {"Authorization": f"Bearer {issue_token(PEOPLE[who], JWT_KEY)}"} if who else {}


def get(client, path, who, **query):
    return client.get(path, query_string=query, headers=auth(who))


def audit_reads(engine, case_id) -> list:
    return [r for r in engine.access_log.reads(case_id) if "/audit/" in r.purpose]


def walk(api, clock) -> int:
    """A matter reported at 09:00 Beijing time, verified at 10:00, filed at 11:00, dispatched at 12:00."""
    started = api.call("post", "/cases", "worker", {"process_key": "grid_matter", "data": {
        "title": "路灯损坏", "category": "民生事项服务", "sub_category": "road_lighting", "reporter": REPORTER}})
    assert started.status_code == 201, started.json
    case_id = started.json["id"]
    for element, who, form in (("verify_register", "worker", {"verified": True, "within_authority": False}),
                               ("accept_report", "agency", {"decision": "file"}),
                               ("dispatch", "agency", {"unit": UNIT, "handling_days": 3})):
        clock.advance(hours=1)
        done = api.call("post", f"/tasks/{api.task_of(case_id, element)}/complete", who, {"data": form})
        assert done.status_code == 200, done.json
    return case_id


@pytest.fixture
def audited(engine, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    clock = FixedClock(T0)
    api = make_api(engine, clock)
    case_id = walk(api, clock)
    key_file = tmp_path / "audit.key"
    generate_key(key_file)
    keyed = create_app(engine, {"GRIDFLOW_JWT_KEY": JWT_KEY, "GRIDFLOW_CLOCK": clock,
                                "GRIDFLOW_AUDIT_KEY_FILE": str(key_file)}).test_client()
    return api, keyed, case_id


def test_verify_sign_a_checkpoint_and_find_an_edited_event(audited, engine):
    api, keyed, case_id = audited
    unsigned = get(api.client, f"/audit/cases/{case_id}/verify", "auditor").json
    assert unsigned["intact"] and unsigned["cases"] == 1 and unsigned["events"] == 4
    assert unsigned["checkpoint"] is None and any("no checkpoint yet" in n for n in unsigned["notes"])

    # The server without a key cannot sign: a clear refusal, not a failure.
    refused = api.client.post("/audit/checkpoints", headers=auth("auditor"))
    assert refused.status_code == 503 and refused.json["error"]["code"] == "audit_key_unavailable"
    assert "audit.key" not in refused.get_data(as_text=True)

    signed = keyed.post("/audit/checkpoints", headers=auth("auditor"))
    assert signed.status_code == 201, signed.json
    assert signed.json["case_count"] == 1 and signed.json["created_by"] == "纪检组"
    assert signed.json["prev_signature"] is None and len(signed.json["signature"]) == 64
    listed = get(keyed, "/audit/checkpoints", "platform").json["items"]
    assert [c["id"] for c in listed] == [signed.json["id"]]

    checked = get(keyed, "/audit/verify", "platform").json
    assert checked["intact"] and checked["checkpoint"]["id"] == signed.json["id"]
    assert not any("not checked" in n for n in checked["notes"])

    with engine.sessions() as session, session.begin():
        session.execute(sa.update(HistoryEvent).where(HistoryEvent.case_id == case_id, HistoryEvent.seq == 2)
                        .values(actor="别人"))
    broken = get(keyed, "/audit/verify", "auditor", limit=1).json
    assert broken["intact"] is False and broken["findings_total"] == 1
    assert broken["findings"] == [{"case_id": case_id, "seq": 2, "kind": "edited",
                                   "detail": broken["findings"][0]["detail"]}]
    assert get(keyed, f"/audit/cases/{case_id}/verify", "auditor").json["intact"] is False
    assert get(keyed, "/audit/cases/999/verify", "auditor").status_code == 404


def test_replay_reproduces_every_step(audited):
    api, _, case_id = audited
    replay = get(api.client, f"/audit/cases/{case_id}/replay", "auditor").json
    assert replay == {"case_id": case_id, "equal": True, "steps": 4, "events": 4, "cannot": None,
                      "divergence": None}
    assert get(api.client, "/audit/cases/999/replay", "auditor").status_code == 404


def test_as_of_shows_the_case_as_it_was_hidden_until_revealed_and_every_reveal_is_logged(audited, engine):
    api, _, case_id = audited
    early = get(api.client, f"/audit/cases/{case_id}/as-of", "worker", at="2026-11-02T09:30").json  # Beijing
    assert (early["status"], early["last_seq"]) == ("reported", 1)
    assert [t["element"] for t in early["open_tasks"]] == ["verify_register"]
    assert early["data"]["reporter"] == HIDDEN and early["personal_data"] == "hidden"
    assert early["data"]["title"] == "路灯损坏"

    later = get(api.client, f"/audit/cases/{case_id}/as-of", "unit", at=(T0 + timedelta(hours=3, minutes=30))
                .isoformat()).json
    assert (later["status"], later["unit"], later["last_seq"]) == ("dispatched", UNIT, 4)
    assert [t["element"] for t in later["open_tasks"]] == ["handle"]
    assert later["deadlines"] and later["deadlines"][0]["passed"] is False
    assert audit_reads(engine, case_id) == []   # nothing revealed so far

    assert get(api.client, f"/audit/cases/{case_id}/as-of", "unit", at="2026-11-02T12:30",
               reveal="true").status_code == 403
    revealed = get(api.client, f"/audit/cases/{case_id}/as-of", "auditor", at="2026-11-02T12:30", reveal="true")
    assert revealed.status_code == 200 and revealed.json["data"]["reporter"] == REPORTER
    assert revealed.json["personal_data"] == "shown"
    (read,) = audit_reads(engine, case_id)
    assert (read.user, read.role, read.fields) == ("纪检组", "auditor", ["reporter"])
    assert "/as-of" in read.purpose and "reveal=true" in read.purpose

    before = get(api.client, f"/audit/cases/{case_id}/as-of", "auditor", at="2026-11-02T08:00")
    assert before.status_code == 404 and "not reported yet" in before.json["error"]["message"]["en"]
    assert get(api.client, f"/audit/cases/{case_id}/as-of", "worker_other", at="2026-11-02T12:30").status_code == 404
    assert get(api.client, f"/audit/cases/{case_id}/as-of", "auditor", at="yesterday").status_code == 422
    assert get(api.client, f"/audit/cases/{case_id}/as-of", "auditor").status_code == 422   # `at` is required


def test_the_dossier_as_json_and_as_a_page(audited, engine):
    api, _, case_id = audited
    dossier = get(api.client, f"/audit/cases/{case_id}/dossier", "auditor").json
    assert dossier["case"]["id"] == case_id and dossier["chain"]["intact"] and dossier["replay"]["equal"]
    assert [s["command"] for s in dossier["steps"]] == ["start", "complete", "complete", "complete"]
    assert [s["actor"] for s in dossier["steps"]] == ["王网格", "王网格", "东风社区网格站", "东风社区网格站"]
    assert dossier["personal_data"] == "hidden" and dossier["steps"][0]["data"]["reporter"] == HIDDEN

    page = get(api.client, f"/audit/cases/{case_id}/dossier", "auditor", format="html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    text = page.get_data(as_text=True)
    assert "案卷" in text and "路灯损坏" in text and REPORTER["name"] not in text
    assert audit_reads(engine, case_id) == []

    # The page shows no step data, only explanations: revealing it shows nothing personal here.
    page = get(api.client, f"/audit/cases/{case_id}/dossier", "auditor", format="html", reveal="true")
    assert page.status_code == 200 and audit_reads(engine, case_id) == []
    shown = get(api.client, f"/audit/cases/{case_id}/dossier", "auditor", reveal="true").json
    assert shown["personal_data"] == "shown" and shown["steps"][0]["data"]["reporter"] == REPORTER
    (read,) = audit_reads(engine, case_id)
    assert read.fields == ["data.reporter"] and "/dossier" in read.purpose
    assert get(api.client, "/audit/cases/999/dossier", "auditor").status_code == 404


# ---- who may do what ------------------------------------------------------------------------------------

C = "{case}"
AT = "at=2026-11-02T12:30"
WATCHERS = {"auditor": 200, "platform": 200}
READ_SCOPE = {"worker": 200, "worker_other": 404, "agency": 200, "agency_other": 404, "agency_township": 200,
              "agency_other_county": 404, "unit": 200, "unit_other": 404, "admin": 403, "auditor": 200,
              "platform": 200, "county_gov": 404}
REVEAL = {**READ_SCOPE, "unit": 403, "unit_other": 403, "county_gov": 403}


def _only(allowed: dict, default: int) -> dict:
    return {who: allowed.get(who, default) for who in ALL}


ROWS = [
    ("get", "/audit/verify", _only(WATCHERS, 403)),
    ("get", f"/audit/cases/{C}/verify", _only(WATCHERS, 403)),
    ("get", "/audit/checkpoints", _only(WATCHERS, 403)),
    ("post", "/audit/checkpoints", _only({"auditor": 201}, 403)),
    ("get", f"/audit/cases/{C}/replay", _only({"auditor": 200}, 403)),
    ("get", f"/audit/cases/{C}/as-of?{AT}", READ_SCOPE),
    ("get", f"/audit/cases/{C}/as-of?{AT}&reveal=true", REVEAL),
    ("get", f"/audit/cases/{C}/dossier", _only({"auditor": 200}, 403)),
    ("get", f"/audit/cases/{C}/dossier?format=html", _only({"auditor": 200}, 403)),
]
TABLE = [(method, path, who, expected[who]) for method, path, expected in ROWS for who in ALL]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    engine = Engine(f"sqlite:///{folder / 'gridflow.db'}")
    clock = FixedClock(T0)
    api = make_api(engine, clock)
    case_id = walk(api, clock)
    generate_key(folder / "audit.key")
    client = create_app(engine, {"GRIDFLOW_JWT_KEY": JWT_KEY, "GRIDFLOW_CLOCK": clock,
                                 "GRIDFLOW_AUDIT_KEY_FILE": str(folder / "audit.key")}).test_client()
    yield client, case_id
    engine.close()


@pytest.mark.parametrize("method, path, who, status", TABLE,
                         ids=[f"{m.upper()} {p} as {w} -> {s}" for m, p, w, s in TABLE])
def test_role_table(prepared, method, path, who, status):
    client, case_id = prepared
    url = path.replace(C, str(case_id))
    response = getattr(client, method)(url, headers=auth(who))
    assert response.status_code == status, (who, url, response.get_data(as_text=True)[:400])
    if status >= 400:
        assert response.json["error"]["code"] and response.json["error"]["message"]["zh"]


def test_no_token_is_401_everywhere(prepared):
    client, case_id = prepared
    for method, path, _ in ROWS:
        assert getattr(client, method)(path.replace(C, str(case_id))).status_code == 401, path
