"""The administrator's and auditor's console pages in a real headless Chromium.

An administrator opens grid_matter in the modeler, changes a timer and a form field in GridFlow's
properties form, runs the check, sees the problem planted in the form marked on its element, fixes it,
deploys version 2 and sees the version diff on the diagram. An auditor verifies, signs a checkpoint,
replays a case step by step (and a tampered one with its first divergence highlighted), opens a case as of
a past moment with the time slider, reveals its personal data (logged) and downloads the dossier. A
process administrator cannot open the audit pages. Screenshots go to console_fixtures.SHOTS."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from engine.audit.trail import generate_key
from engine.clock import FixedClock
from engine.definitions.diff import compare_files
from engine.store.models import PersonalDataRead
from tests.api_fixtures import REPORTER, UNIT
from tests.conftest import T0, grid_matter_upload
from tests.console_fixtures import CHROMEDRIVER, CHROMIUM, Browser, LiveServer, console_app
from tests.test_cases import MATTER, Walk

FORM_TASK = "check_result"       # its form: passed:bool, comment?:str
TIMER = "follow_up_window"       # "P7D"


@pytest.fixture
def audited(tmp_path):
    """(engine, server, case ids) on a SQLite file: the console with an audit key, and two walked cases."""
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from engine.service import Engine
    key = tmp_path / "keys" / "audit.key"
    generate_key(key)
    engine = Engine(f"sqlite:///{tmp_path / 'console.db'}")
    app = console_app(engine, GRIDFLOW_AUDIT_KEY_FILE=str(key))
    clock = FixedClock(T0)
    walk = Walk(engine, clock, data={**MATTER, "reporter": REPORTER}).dispatched(unit=UNIT)
    walk.sign().do("handle", result="路灯已修复")
    tampered = Walk(engine, clock).dispatched().id
    server = LiveServer(app)
    yield engine, server, walk.id, tampered
    server.stop()
    engine.close()


@pytest.fixture
def b(audited):
    browser = Browser(audited[1].url)
    yield browser
    print(f"\nconsole screenshots: {browser.shot('zz-last').parent}")
    browser.quit()


def _ready(b: Browser, css: str):
    WebDriverWait(b.driver, 30).until(lambda d: b.find(css).get_attribute("data-ready") == "1")


def _select(b: Browser, element_id: str):
    """Click the element's shape on the canvas, as a person would."""
    shape = b.find(f'#gf-canvas .djs-element[data-element-id="{element_id}"] .djs-hit')
    ActionChains(b.driver).move_to_element(shape).click().perform()
    WebDriverWait(b.driver, 10).until(lambda d: f"id {element_id}" in b.text("#gf-props"))


def _set(b: Browser, css: str, value: str):
    field = b.find(css)
    field.clear()
    field.send_keys(value, Keys.TAB)   # the form writes on change


def _wait_status(b: Browser, kind: str):
    try:
        WebDriverWait(b.driver, 30).until(lambda d: f"gf-status-{kind}" in b.find("#gf-status").get_attribute("class"))
    except Exception:
        raise AssertionError(f"status is not {kind}: {b.text('#gf-status')!r}") from None


def _status_name(status: str) -> str:
    from api.console import i18n
    return i18n.STATUSES.get(status, (status,))[0]


def _saved_xml(b: Browser) -> str:
    return b.driver.execute_async_script(
        "var done = arguments[0]; window.gridflowModeler.saveXML({format: true})"
        ".then(function (r) { done(r.xml); }, function (e) { done('ERROR ' + e); });")


def test_an_administrator_edits_checks_deploys_and_compares(audited, b):
    engine = audited[0]
    b.sign_in("流程管理员")
    assert "审计" not in b.text("#nav")
    b.go("/console/admin/definitions")
    assert b.find('#def-grid_matter tr[data-version="1"]')
    b.shot("admin-01-definitions")
    b.click('#def-grid_matter a[href$="/versions/1/edit"]')
    _ready(b, "#gf-modeler")

    # The modeler writes the definition back unchanged in meaning (spiffworkflow properties included).
    original = grid_matter_upload()["grid_matter.bpmn"].decode()
    untouched = compare_files({"grid_matter.bpmn": original}, {"grid_matter.bpmn": _saved_xml(b)})
    assert [e.as_dict() for f in untouched for e in f.elements] == []

    # A timer: the follow-up window becomes ten days.
    _select(b, TIMER)
    assert b.find("#gf-timer-value").get_attribute("value") == '"P7D"'
    _set(b, "#gf-timer-value", '"P10D"')
    # A form field: the check adds a photo — first named in Chinese, which the form does not allow.
    _select(b, FORM_TASK)
    assert [i.get_attribute("value") for i in b.find_all(".gf-form-name")] == ["passed", "comment"]
    b.tick("#gf-form-add")
    _set(b, ".gf-form-fields tr:last-child .gf-form-name", "照片")
    b.shot("admin-02-properties-form")

    b.tick("#gf-check")
    _wait_status(b, "bad")
    problems = b.find_all("#gf-problems li")
    assert [p.get_attribute("data-element") for p in problems] == [FORM_TASK], b.text("#gf-problems")
    assert "照片" in problems[0].text
    overlay = b.find(f'.gf-problem-overlay[data-element="{FORM_TASK}"]')
    assert overlay.is_displayed() and overlay.text.startswith("!")
    shape = b.find(f'#gf-canvas .djs-element[data-element-id="{FORM_TASK}"]')
    assert "gf-has-problem" in shape.get_attribute("class")
    assert not b.find("#gf-deploy").is_enabled()
    b.shot("admin-03-problem-marked")

    # Fixed, checked again, deployed.
    _set(b, ".gf-form-fields tr:last-child .gf-form-name", "photo")
    b.tick("#gf-check")
    _wait_status(b, "ok")
    assert not b.find_all(".gf-problem-overlay")
    b.tick("#gf-deploy")
    b.wait_for("#gf-compare-link")
    assert "版本 2" in b.text("#gf-deployed")
    b.shot("admin-04-deployed")
    v2 = engine.definitions.find("grid_matter", 2)
    assert v2.deployed_by == "流程管理员"
    assert 'value="passed:bool, comment?:str, photo?:str"' in engine.definitions.files(v2.id)["grid_matter.bpmn"]

    # The version diff on the diagram: the two changed elements, coloured in both drawings, and listed.
    b.click("#gf-compare-link")
    _ready(b, "#gf-diff")
    changed = {r.get_attribute("data-element") for r in b.find_all(".gf-diff-row")}
    assert changed == {TIMER, FORM_TASK}, changed
    for side in ("from", "to"):
        for element in (TIMER, FORM_TASK):
            marked = b.find(f'#gf-diff-{side} .djs-element[data-element-id="{element}"]')
            assert "gf-diff-changed" in marked.get_attribute("class")
    rows = b.text(".gf-diff-table")
    assert '"P10D"' in rows and "photo" in rows and "str?" in rows
    b.tick(f'.gf-diff-row button[data-element="{TIMER}"]')
    b.shot("admin-05-version-diff")
    errors = b.console_errors()
    assert errors == [], "\n".join(errors)


def test_an_administrator_opens_a_file_from_another_modeler(audited, b, tmp_path):
    drawn = tmp_path / "outside.bpmn"
    drawn.write_text(grid_matter_upload()["grid_matter.bpmn"].decode()
                     .replace('<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P7D"</bpmn:timeDuration>',
                              '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">${followUpDays}</bpmn:timeDuration>'),
                     encoding="utf-8")
    b.sign_in("流程管理员")
    b.go("/console/admin/definitions").click("#open-file")
    _ready(b, "#gf-modeler")
    b.find("#gf-open").send_keys(str(drawn))
    _wait_status(b, "bad")
    assert [p.get_attribute("data-element") for p in b.find_all("#gf-problems li")] == [TIMER]
    assert b.find(f'.gf-problem-overlay[data-element="{TIMER}"]').is_displayed()
    assert "Camunda" in b.text("#gf-problems")
    b.shot("admin-06-outside-file-checked")
    errors = b.console_errors()
    assert errors == [], "\n".join(errors)


def test_an_auditor_verifies_replays_goes_back_in_time_and_downloads_the_dossier(audited, b, tmp_path):
    engine, _, case_id, tampered = audited
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    b.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    b.sign_in("纪检组")
    b.go("/console/audit/verify?run=1")
    assert b.text("#verify-result") == "完整" and b.text("#verify-checkpoint") == "无"
    b.click("#sign-checkpoint")
    assert "已签署检查点" in b.text(".flash")
    b.go("/console/audit/verify?run=1")
    assert b.text("#verify-checkpoint").startswith("#1")
    b.shot("audit-01-verify")

    # Replay step by step beside the record.
    b.go("/console/audit").fill("#open-case", str(case_id)).click("#open-case-go")
    _ready(b, "#gf-audit-case")
    rows = b.find_all(".gf-step-row")
    assert rows and {r.get_attribute("data-outcome") for r in rows} == {"equal"}
    b.tick("#gf-step-next").tick("#gf-step-next")
    assert "gf-step-current" in rows[2].get_attribute("class")
    assert "第 3 /" in b.text("#gf-step-label")
    b.shot("audit-02-replay")

    # A record altered after the fact: the first divergence is highlighted, recorded beside replayed.
    with engine.db.begin() as conn:
        conn.execute(sa.text("UPDATE history_events SET status_after = 'closed' WHERE case_id = :c AND seq = 3"),
                     {"c": tampered})
    b.go(f"/console/audit/cases/{tampered}/replay")
    _ready(b, "#gf-audit-case")
    outcomes = [r.get_attribute("data-outcome") for r in b.find_all(".gf-step-row")]
    assert outcomes[:2] == ["equal", "equal"] and outcomes[2] == "diverged"
    assert set(outcomes[3:]) <= {"not_replayed"}
    assert "gf-step-current" in b.find('.gf-step-row[data-seq="3"]').get_attribute("class")
    assert b.find_all('#divergence tr[data-differs="yes"]')
    b.shot("audit-03-replay-divergence")

    # As of a past moment: the slider goes back one event at a time.
    b.go(f"/console/audit/cases/{case_id}/as-of")
    _ready(b, "#gf-audit-case")
    events = engine.queries.history(case_id)
    assert b.find("#asof-status-value").text == _status_name(events[-1].status_after)
    slider = b.find("#gf-asof-slider")
    assert int(slider.get_attribute("value")) == len(events) - 1
    page = b.find("html")
    slider.send_keys(Keys.ARROW_LEFT)
    WebDriverWait(b.driver, 15).until(lambda d: page != d.find_element("css selector", "html"))
    _ready(b, "#gf-audit-case")
    before_last = events[-2]
    assert int(b.find("#gf-asof-slider").get_attribute("value")) == len(events) - 2
    assert f"#{before_last.seq}" in b.text("#asof-status")
    assert b.find("#asof-status-value").text == _status_name(before_last.status_after)
    open_task = b.find('#gf-audit-canvas .djs-element[data-element-id="handle"]')
    assert "gf-open" in open_task.get_attribute("class")
    assert "李秀英" not in b.text("#asof-data") and "已隐去" in b.text("#asof-data")
    b.shot("audit-04-as-of")
    b.click("#asof-reveal")
    _ready(b, "#gf-audit-case")
    assert "李秀英" in b.text("#asof-data")
    with engine.readers() as s:
        reads = s.scalars(sa.select(PersonalDataRead).where(PersonalDataRead.case_id == case_id)).all()
    assert [(r.user, r.role) for r in reads] == [("纪检组", "auditor")] and reads[0].fields
    b.shot("audit-05-as-of-revealed")

    # The dossier, downloaded as HTML and JSON.
    b.tick("#dossier-html").tick("#dossier-json")
    WebDriverWait(b.driver, 30).until(lambda d: {p.name for p in downloads.iterdir()} >=
                                      {f"dossier-{case_id}.html", f"dossier-{case_id}.json"})
    data = json.loads((downloads / f"dossier-{case_id}.json").read_text(encoding="utf-8"))
    assert data["case"]["id"] == case_id and data["replay"]["equal"] and data["personal_data"] == "hidden"
    assert "<html" in (downloads / f"dossier-{case_id}.html").read_text(encoding="utf-8").lower()
    errors = b.console_errors()
    assert errors == [], "\n".join(errors)


def test_a_process_administrator_cannot_open_the_audit_pages(audited, b):
    _, _, case_id, _ = audited
    b.sign_in("流程管理员")
    for path in ("/console/audit/verify", f"/console/audit/cases/{case_id}/replay",
                 f"/console/audit/cases/{case_id}/as-of", f"/console/audit/cases/{case_id}/dossier.json"):
        b.go(path)
        assert "403" in b.text("main"), (path, b.text("main"))
    b.shot("audit-06-admin-refused")
    # …and an auditor gets no editor.
    b.sign_in("纪检组")
    b.go("/console/admin/definitions/grid_matter/versions/1/edit")
    assert "403" in b.text("main")
