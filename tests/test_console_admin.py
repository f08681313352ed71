"""The administrator's and auditor's console pages over Flask's test client, on SQLite and PostgreSQL:
who may open what, the check and deploy endpoints (CSRF, problems by element, 422), cases per version,
the diagram-only diff, verify findings located (an edited event, a deleted case, a removed checkpoint),
the replay's first divergence, as-of with reveal rules and logging, the dossier as an attachment."""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from engine.audit.trail import generate_key
from engine.clock import FixedClock
from engine.store.models import PersonalDataRead
from tests.api_fixtures import REPORTER, UNIT
from tests.conftest import T0, grid_matter_upload
from tests.console_fixtures import PASSWORD, console_app
from tests.test_cases import MATTER, Walk

SOURCE = grid_matter_upload()["grid_matter.bpmn"].decode()


@pytest.fixture
def setup(engine, tmp_path):
    key = tmp_path / "keys" / "audit.key"
    generate_key(key)
    app = console_app(engine, GRIDFLOW_AUDIT_KEY_FILE=str(key))
    clock = FixedClock(T0)
    walk = Walk(engine, clock, data={**MATTER, "reporter": REPORTER}).dispatched(unit=UNIT)
    walk.sign().do("handle", result="路灯已修复")
    other = Walk(engine, clock).dispatched().id
    return app, engine, walk.id, other


def _client(app, name):
    client = app.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed = client.post("/console/sign-in", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert signed.status_code == 302, signed.get_data(as_text=True)[:500]
    page = client.get("/console/registry").get_data(as_text=True)   # a fresh session: its own token
    client.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client


def _files(client, url, files: dict[str, str], token=True):
    from io import BytesIO
    data = {"files": [(BytesIO(text.encode()), name) for name, text in files.items()]}
    if token:
        data["csrf_token"] = client.csrf
    return client.post(url, data=data, content_type="multipart/form-data")


def test_who_opens_what(setup):
    app, _, case_id, _ = setup
    admin, auditor, unit = _client(app, "流程管理员"), _client(app, "纪检组"), _client(app, "区城管局")
    audit_pages = ["/console/audit/verify", f"/console/audit/cases/{case_id}/replay",
                   f"/console/audit/cases/{case_id}/as-of", f"/console/audit/cases/{case_id}/dossier.html",
                   f"/console/audit/cases/{case_id}/definition.json"]
    for path in audit_pages:
        assert admin.get(path).status_code == 403, path
        assert auditor.get(path).status_code == 200, path
    assert admin.post("/console/audit/checkpoints", data={"csrf_token": admin.csrf}).status_code == 403
    for path in ("/console/admin/editor", "/console/admin/definitions/grid_matter/versions/1/edit"):
        assert admin.get(path).status_code == 200
        assert auditor.get(path).status_code == 403
    assert _files(auditor, "/console/admin/check", {"g.bpmn": SOURCE}).status_code == 403
    assert _files(auditor, "/console/admin/deploy", {"g.bpmn": SOURCE}).status_code == 403
    # The auditor reads definitions and their diff, with no edit link; the unit reads none of it.
    listing = auditor.get("/console/admin/definitions").get_data(as_text=True)
    assert "grid_matter" in listing and "/edit" not in listing
    assert unit.get("/console/admin/definitions").status_code == 403
    # A unit may see the case as of a moment (its own case), never replay or reveal.
    assert unit.get(f"/console/audit/cases/{case_id}/as-of").status_code == 200
    assert unit.get(f"/console/audit/cases/{case_id}/as-of?reveal=1").status_code == 403
    assert unit.get(f"/console/audit/cases/{case_id}/replay").status_code == 403
    # Out of scope: another grid's worker does not find the case.
    assert _client(app, "赵网格").get(f"/console/audit/cases/{case_id}/as-of").status_code == 404


def test_definitions_list_versions_with_their_cases(setup):
    app, engine, _, _ = setup
    page = _client(app, "流程管理员").get("/console/admin/definitions").get_data(as_text=True)
    row = re.search(r'<tr data-version="1">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[2] == "admin" and cells[4:6] == ["2", "2"]   # running, all
    info = engine.definitions.find("grid_matter", 1)
    assert engine.definitions.case_counts() == {info.id: (2, 2)}


def test_check_and_deploy(setup):
    app, engine, _, _ = setup
    admin = _client(app, "流程管理员")
    planted = SOURCE.replace('value="passed:bool, comment?:str"', 'value="passed:bool, 照片?:str"')
    # Without the form's CSRF token nothing is checked.
    assert _files(admin, "/console/admin/check", {"grid_matter.bpmn": planted}, token=False).status_code == 400
    checked = _files(admin, "/console/admin/check", {"grid_matter.bpmn": planted}).get_json()
    assert not checked["ok"]
    assert [(p["element_id"], p["code"]) for p in checked["problems"]] == [("check_result", "form")]
    assert checked["problems"][0]["message"]["zh"] and checked["problems"][0]["message"]["en"]
    refused = _files(admin, "/console/admin/deploy", {"grid_matter.bpmn": planted})
    assert refused.status_code == 422 and refused.get_json()["problems"][0]["element_id"] == "check_result"
    assert [i.version for i in engine.definitions.list("grid_matter")] == [1]
    not_bpmn = _files(admin, "/console/admin/check", {"notes.txt": "hello"}).get_json()
    assert [p["code"] for p in not_bpmn["problems"]] == ["file_type"]

    fixed = SOURCE.replace('value="passed:bool, comment?:str"', 'value="passed:bool, photo?:str"')
    assert _files(admin, "/console/admin/check", {"grid_matter.bpmn": fixed}).get_json() == {"ok": True, "problems": []}
    deployed = _files(admin, "/console/admin/deploy", {"grid_matter.bpmn": fixed})
    assert deployed.status_code == 201
    outcome = deployed.get_json()["outcomes"][0]
    assert (outcome["version"], outcome["created"]) == (2, True)
    assert outcome["compare_url"] == "/console/admin/definitions/grid_matter/compare?from=1&to=2"
    assert engine.definitions.find("grid_matter", 2).deployed_by == "流程管理员"
    diff = admin.get(outcome["compare_url"]).get_data(as_text=True)
    assert 'data-element="check_result" data-change="changed"' in diff and "gf-drawing-only" not in diff
    assert _files(admin, "/console/admin/deploy", {"grid_matter.bpmn": fixed}).get_json()["outcomes"][0]["created"] \
        is False


def test_a_diagram_only_change_says_so(setup):
    app, engine, _, _ = setup
    moved = re.sub(r'(<bpmndi:BPMNShape id="check_result_di"[^>]*>\s*<dc:Bounds x=")(\d+)', lambda m: m.group(1) +
                   str(int(m.group(2)) + 40), SOURCE, count=1)
    assert moved != SOURCE
    engine.definitions.deploy({"grid_matter.bpmn": moved.encode()}, "someone", FixedClock(T0))
    page = _client(app, "纪检组").get("/console/admin/definitions/grid_matter/compare?from=1&to=2").get_data(as_text=True)
    assert 'id="gf-drawing-only"' in page and "gf-diff-row" not in page
    assert _client(app, "纪检组").get("/console/admin/definitions/grid_matter/compare?from=1&to=9").status_code == 404
    assert _client(app, "纪检组").get("/console/admin/definitions/grid_matter/compare?from=x&to=2").status_code == 400


def _findings(page: str) -> list[tuple[str, str, str]]:
    table = re.search(r'<table class="gf-findings" id="findings">(.*?)</table>', page, re.S)
    return re.findall(r"<tr><td>(.*?)</td>\s*<td>(.*?)</td><td>(.*?)</td>", table.group(1), re.S) if table else []


def test_verify_locates_findings_and_checkpoints(setup):
    app, engine, case_id, other = setup
    auditor = _client(app, "纪检组")
    page = auditor.get("/console/audit/verify?run=1").get_data(as_text=True)
    assert 'id="verify-result">完整' in page and "无" in re.search(r'id="verify-checkpoint">(.*?)</td>', page, re.S).group(1)
    for _ in range(3):
        assert auditor.post("/console/audit/checkpoints", data={"csrf_token": auditor.csrf}).status_code == 302
    assert auditor.post("/console/audit/checkpoints", data={}).status_code == 400   # no CSRF token
    with engine.db.begin() as conn:
        conn.execute(sa.text("UPDATE history_events SET actor = 'nobody' WHERE case_id = :c AND seq = 2"),
                     {"c": case_id})
        conn.execute(sa.text("DELETE FROM audit_checkpoints WHERE id = 2"))
    page = auditor.get("/console/audit/verify?run=1").get_data(as_text=True)
    rows = _findings(page)
    located = {(re.sub(r"<[^>]+>", "", c).strip(), s, k) for c, s, k in rows}
    assert (str(case_id), "2", "edited") in located
    assert ("—", "—", "checkpoint") in located            # checkpoint 2 went missing between 1 and 3
    # One case: its own chain is intact, the gap in the checkpoints is still said, against checkpoint 3.
    one = auditor.get(f"/console/audit/verify?case={other}").get_data(as_text=True)
    assert "#3" in re.search(r'id="verify-checkpoint">(.*?)</td>', one, re.S).group(1)
    kinds = [k for _, _, k in _findings(one)]
    assert kinds and set(kinds) == {"checkpoint"}, _findings(one)   # none about the case itself
    assert auditor.get("/console/audit/verify?case=abc").status_code == 400


def test_replay_shows_the_first_divergence(setup):
    app, engine, case_id, other = setup
    auditor = _client(app, "纪检组")
    page = auditor.get(f"/console/audit/cases/{case_id}/replay").get_data(as_text=True)
    assert set(re.findall(r'data-outcome="(\w+)"', page)) == {"equal"} and 'id="divergence"' not in page
    with engine.db.begin() as conn:
        conn.execute(sa.text("UPDATE history_events SET status_after = 'closed' WHERE case_id = :c AND seq = 3"),
                     {"c": other})
    page = auditor.get(f"/console/audit/cases/{other}/replay").get_data(as_text=True)
    outcomes = re.findall(r'data-seq="(\d+)" data-outcome="(\w+)"', page)
    assert outcomes[:3] == [("1", "equal"), ("2", "equal"), ("3", "diverged")]
    assert all(o == "not_replayed" for _, o in outcomes[3:])
    assert 'data-differs="yes"' in page and "closed" in page
    config = json.loads(re.search(r"data-config='([^']*)'", page).group(1))
    assert config["divergence_index"] == 2 and config["steps"][2]["outcome"] == "diverged"


def test_as_of_hides_personal_data_until_revealed_and_logs_the_reveal(setup):
    app, engine, case_id, _ = setup
    auditor = _client(app, "纪检组")
    events = engine.queries.history(case_id)
    at = events[1].clock_time.isoformat()
    page = auditor.get(f"/console/audit/cases/{case_id}/as-of", query_string={"at": at}).get_data(as_text=True)
    assert f"#{events[1].seq} ·" in page and REPORTER["phone"] not in page and "已隐去" in page
    assert 'value="1"' in page    # the slider stands at the second event
    with engine.readers() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(PersonalDataRead)) == 0
    page = auditor.get(f"/console/audit/cases/{case_id}/as-of",
                       query_string={"at": at, "reveal": "1"}).get_data(as_text=True)
    assert REPORTER["phone"] in page
    with engine.readers() as s:
        reads = s.scalars(sa.select(PersonalDataRead)).all()
    assert [(r.user, r.case_id) for r in reads] == [("纪检组", case_id)] and reads[0].fields
    before = auditor.get(f"/console/audit/cases/{case_id}/as-of", query_string={"at": "2020-01-01T00:00"})
    assert before.status_code == 200 and "尚未上报" in before.get_data(as_text=True)
    assert auditor.get(f"/console/audit/cases/{case_id}/as-of?at=yesterday").status_code == 400


def test_the_dossier_downloads_as_html_and_json(setup):
    app, _, case_id, _ = setup
    auditor = _client(app, "纪检组")
    html = auditor.get(f"/console/audit/cases/{case_id}/dossier.html")
    assert html.headers["Content-Disposition"] == f'attachment; filename="dossier-{case_id}.html"'
    assert REPORTER["phone"] not in html.get_data(as_text=True)
    data = auditor.get(f"/console/audit/cases/{case_id}/dossier.json").get_json()
    assert data["case"]["id"] == case_id and data["chain"]["intact"] and data["replay"]["equal"]
    assert auditor.get(f"/console/audit/cases/{case_id}/dossier.pdf").status_code == 404


def test_running_cases_are_planned_and_migrated_with_a_verdict_each(setup):
    app, engine, case_id, other = setup
    admin = _client(app, "流程管理员")
    longer = SOURCE.replace('"P7D"', '"P10D"')
    assert _files(admin, "/console/admin/deploy", {"grid_matter.bpmn": longer}).status_code == 201
    listing = admin.get("/console/admin/definitions").get_data(as_text=True)
    assert "/console/admin/definitions/grid_matter/migrate?from=1&amp;to=2" in listing
    dry = admin.get("/console/admin/definitions/grid_matter/migrate?from=1&to=2").get_data(as_text=True)
    rows = re.findall(r'data-case="(\d+)" data-outcome="(\w+)" data-migratable="(\w+)"', dry)
    assert sorted(rows) == sorted([(str(case_id), "planned", "yes"), (str(other), "planned", "yes")])
    v1 = engine.definitions.find("grid_matter", 1).id
    assert {engine.queries.case(c).definition_id for c in (case_id, other)} == {v1}   # a dry run changes nothing
    assert admin.post("/console/admin/definitions/grid_matter/migrate",
                      data={"from": 1, "to": 2}).status_code == 400                    # no CSRF token
    run = admin.post("/console/admin/definitions/grid_matter/migrate",
                     data={"from": 1, "to": 2, "csrf_token": admin.csrf}).get_data(as_text=True)
    assert sorted(re.findall(r'data-case="(\d+)" data-outcome="(\w+)"', run)) == \
        sorted([(str(case_id), "migrated"), (str(other), "migrated")])
    v2 = engine.definitions.find("grid_matter", 2).id
    assert {engine.queries.case(c).definition_id for c in (case_id, other)} == {v2}
    assert _client(app, "纪检组").get("/console/admin/definitions/grid_matter/migrate?from=1&to=2").status_code == 403
    assert admin.get("/console/admin/definitions/grid_matter/migrate?from=1&to=7").status_code == 404
