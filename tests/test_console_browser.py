"""The console in a real headless Chromium: each role signs in and a matter goes from report to close
through the console alone; the diagram marks the path taken; a unit sees masked data; a worker cannot
open another grid's case by its address; nothing is written to the browser console (no CSP violation, no
script error). Screenshots are written to a temporary folder (see console_fixtures.SHOTS)."""
from __future__ import annotations

import re

from selenium.webdriver.common.keys import Keys

from .api_fixtures import UNIT
from .console_fixtures import Browser, browser, live_console  # noqa: F401  (fixtures)

PHONE = "13800000001"


def _case_id(b: Browser) -> int:
    match = re.match(r"/console/cases/(\d+)", b.path)
    assert match, b.path
    return int(match.group(1))


def _open_task(b: Browser, case_id: int, element: str):
    b.go(f"/console/cases/{case_id}")
    links = b.find_all(f"#open-tasks a[data-element={element}]")
    assert links, (element, b.text("#open-tasks") if b.find_all("#open-tasks") else "no open tasks")
    b.click(f"#open-tasks a[data-element={element}]")
    b.wait_for("#task-name")


def _complete(b: Browser, **fields):
    for name, value in fields.items():
        if isinstance(value, bool):
            b.tick(f"#field_{name}_{'true' if value else 'false'}")
        else:
            b.fill(f"#field_{name}", str(value))
    b.click("#complete")
    assert not b.find_all(".flash.error"), b.text(".flash.error")


def _status(b: Browser) -> str:
    return b.find("#case-status").get_attribute("data-status")


def test_a_matter_from_report_to_close_through_the_console(browser, live_console):
    b = browser
    # Signing in is needed, and comes back to the page asked for.
    b.go("/console/tasks")
    assert b.path.startswith("/console/sign-in")
    b.shot("01-sign-in")
    b.fill("#name", "王网格").fill("#password", "wrong-password-1").click("#sign-in")
    assert b.find("#sign-in-error").text == "用户名或密码错误"
    b.fill("#name", "王网格").fill("#password", "console-pass-123").click("#sign-in")
    assert b.path == "/console/tasks" and "王网格" in b.text("#who")

    # The grid worker reports a matter; the negative list is refused with its article first.
    b.go("/console/report")
    b.fill("#title", "颁发营业执照").select("#sub_category", "administrative_licensing_decision").click("#submit-report")
    assert "第十四条" in b.text("#refusal-article")
    b.shot("02-report-refused")
    b.fill("#title", "幸福小区路灯损坏").select("#sub_category", "road_lighting")
    b.fill("#description", "3号楼前两盏路灯不亮").fill("#reporter_name", "李秀英").fill("#reporter_phone", PHONE)
    b.shot("03-report")
    b.click("#submit-report")
    case_id = _case_id(b)
    assert _status(b) == "reported"

    _open_task(b, case_id, "verify_register")
    b.shot("04-task-verify")
    _complete(b, verified=True, within_authority=False)

    b.sign_in("东风社区网格站")
    b.go("/console/tasks")
    assert f"#{case_id}" in b.text("#tasks")
    _open_task(b, case_id, "accept_report")
    _complete(b, decision="file")
    _open_task(b, case_id, "dispatch")
    _complete(b, unit=UNIT, handling_days=3)
    assert _status(b) == "dispatched"

    # The unit: sees the reporter masked, signs for, asks for an extension.
    b.sign_in("区城管局")
    b.go("/console/tasks")
    assert b.find_all("#tasks .badge.green"), b.text("#tasks")
    b.shot("05-unit-tasks")
    b.go(f"/console/cases/{case_id}")
    assert b.find("#personal-data").get_attribute("data-state") == "masked"
    assert PHONE not in b.text("#case-data") and "李秀英" not in b.text("#case-data")
    _open_task(b, case_id, "handle")
    b.click("#sign-for")
    assert _status(b) == "in_progress"
    _open_task(b, case_id, "handle")
    b.fill("#extension-days", "2").fill("#extension-reason", "需采购灯具").click("#request-extension")
    assert not b.find_all(".flash.error"), b.text(".flash.error")

    # The dispatching agency approves the extension and reminds; the township supervises.
    b.sign_in("东风社区网格站")
    b.go(f"/console/cases/{case_id}")
    assert b.find("#personal-data").get_attribute("data-state") == "unmasked"
    b.click("[id^=approve-extension-]")
    assert not b.find_all(".flash.error"), b.text(".flash.error")
    b.fill("[id^=remind-note-]", "请按期办结").click("button[id^=remind-]")
    assert not b.find_all(".flash.error"), b.text(".flash.error")
    b.sign_in("街道网格中心")
    b.go(f"/console/cases/{case_id}")
    b.select("#card", "yellow").click("#supervise")
    assert not b.find_all(".flash.error"), b.text(".flash.error")

    b.sign_in("区城管局")
    _open_task(b, case_id, "handle")
    _complete(b, result="更换灯具 2 套", final=True)
    assert _status(b) == "verifying"

    b.sign_in("王网格")
    _open_task(b, case_id, "check_result")
    _complete(b, passed=True)

    b.sign_in("东风社区网格站")
    _open_task(b, case_id, "close_case")
    _complete(b, summary="按期办结")
    assert _status(b) == "closed"

    # The diagram: the path taken is marked, the follow-up message it waits for too.
    b.wait_for("#diagram.ready")
    done = b.driver.execute_script(
        "return Array.from(document.querySelectorAll('#diagram .djs-element.gf-done'))"
        ".map(function (e) { return e.getAttribute('data-element-id'); });")
    for element in ("verify_register", "accept_report", "dispatch", "handle", "check_result", "close_case"):
        assert element in done, done
    assert "self_handle" not in done  # the branch not taken stays plain
    assert b.find_all("#diagram .djs-connection.gf-done")
    b.driver.execute_script("document.getElementById('diagram').scrollIntoView();")
    b.shot("06-case-closed-diagram")
    timeline = b.text("#timeline")
    for who in ("王网格", "东风社区网格站", "区城管局", "街道网格中心"):
        assert who in timeline
    b.shot("07-case-closed")

    # Another grid's worker: the case does not exist for them, by list or by address.
    b.sign_in("赵网格")
    b.go(f"/console/cases/{case_id}")
    assert b.text("h1") == "404"
    b.go(f"/console/cases/{case_id}/path.json")
    assert "404" in b.driver.page_source or "not_found" in b.driver.page_source
    b.go("/console/cases")
    assert b.find_all("#no-cases")

    # The auditor reads it; the English switch works.
    b.sign_in("纪检组")
    b.go(f"/console/cases/{case_id}")
    b.click("button[name=lang][value=en]")
    assert b.find("#case-status").text == "closed" and "Timeline" in b.driver.page_source
    b.shot("08-auditor-english")
    assert b.console_errors() == []


def test_keyboard_reaches_every_control_and_each_has_a_label(browser, live_console):
    b = browser
    b.sign_in("王网格")
    for path in ("/console/report", "/console/tasks", "/console/cases"):
        b.go(path)
        unlabeled = b.driver.execute_script("""
            return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
              .filter(function (el) {
                return !(el.labels && el.labels.length) && !el.getAttribute('aria-label'); })
              .map(function (el) { return el.id || el.name; });""")
        assert unlabeled == [], (path, unlabeled)
    b.go("/console/report")
    body = b.find("body")
    reached = []
    for _ in range(30):
        body = b.driver.switch_to.active_element
        body.send_keys(Keys.TAB)
        reached.append(b.driver.switch_to.active_element.get_attribute("id"))
    for control in ("title", "sub_category", "submit-report", "sign-out"):
        assert control in reached, reached
    b.shot("09-keyboard-focus")
    assert b.console_errors() == []
