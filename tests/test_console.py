"""The console without a browser (Flask's test client), on SQLite and PostgreSQL: accounts and their
lock-out, the sign-in log, CSRF on every form, the security headers, scope (a page never shows more than
the API would), masking, each page answering, and `gridflow users`."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner

from api.cli import main
from engine.access.accounts import FREE_ATTEMPTS, SignInRefused, lock_for
from engine.clock import FixedClock
from engine.errors import Conflict, InvalidCommand

from .api_fixtures import GRID, OTHER_GRID, REPORTER, UNIT
from .conftest import T0
from .console_fixtures import PASSWORD, console_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    def __init__(self, engine, clock):
        self.engine, self.clock = engine, clock
        self.app = console_app(engine, clock)
        self.client = self.app.test_client()

    def token(self, path="/console/sign-in") -> str:
        return CSRF.search(self.client.get(path, follow_redirects=True).text).group(1)

    def sign_in(self, name, password=PASSWORD):
        self.client.post("/console/sign-out", data={"csrf_token": self.token()})
        return self.client.post("/console/sign-in", data={"name": name, "password": password,
                                                          "csrf_token": self.token()})

    def post(self, path, data=None, **kwargs):
        return self.client.post(path, data={"csrf_token": self.token("/console/cases"), **(data or {})}, **kwargs)

    def task_of(self, case_id, element):
        return next(t.id for t in self.engine.queries.tasks(case_id=case_id) if t.element_id == element)

    def complete(self, case_id, element, **fields):
        task = self.task_of(case_id, element)
        data = {f"field_{k}": ("true" if v is True else "false" if v is False else str(v)) for k, v in fields.items()}
        answer = self.post(f"/console/tasks/{task}/complete", data)
        assert answer.status_code == 302 and f"/console/cases/{case_id}" in answer.location, answer.text[-800:]

    def report(self, **values):
        answer = self.post("/console/report", {"title": "路灯损坏", "sub_category": "road_lighting",
                                               "reporter_name": REPORTER["name"],
                                               "reporter_phone": REPORTER["phone"], **values})
        assert answer.status_code == 302, answer.text[-800:]
        return int(answer.location.rsplit("/", 1)[1])

    def dispatched(self) -> int:
        self.sign_in("王网格")
        case_id = self.report()
        self.complete(case_id, "verify_register", verified=True, within_authority=False)
        self.sign_in("东风社区网格站")
        self.complete(case_id, "accept_report", decision="file")
        self.complete(case_id, "dispatch", unit=UNIT, handling_days=3)
        return case_id


@pytest.fixture
def console(engine):
    return Console(engine, FixedClock(T0))


def test_sign_in_needs_the_password_and_is_logged(console):
    assert console.client.get("/console/tasks").location.startswith("/console/sign-in?next=/console/tasks")
    wrong = console.sign_in("王网格", "not-the-password")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    unknown = console.sign_in("无此人", PASSWORD)
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text  # same words: names are not revealed
    good = console.sign_in("王网格")
    assert good.status_code == 302
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert console.client.get("/console/tasks").status_code == 200
    console.client.post("/console/sign-out", data={"csrf_token": console.token("/console/tasks")})
    assert console.client.get("/console/tasks").status_code == 302
    events = [(e.user, e.event) for e in reversed(console.engine.accounts.events())]
    assert events == [("王网格", "failed"), ("无此人", "failed"), ("王网格", "signed_in"), ("王网格", "signed_out")]


def test_the_session_cookie_is_secure_behind_https(console):
    answer = console.client.post("/console/sign-in", base_url="https://console.example",
                                 data={"name": "王网格", "password": PASSWORD,
                                       "csrf_token": CSRF.search(console.client.get(
                                           "/console/sign-in", base_url="https://console.example").text).group(1)})
    assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]


def test_repeated_failures_lock_the_account_for_longer_each_time(console):
    accounts, clock = console.engine.accounts, console.clock
    for _ in range(FREE_ATTEMPTS - 1):
        with pytest.raises(SignInRefused) as refused:
            accounts.sign_in("王网格", "wrong-password", clock=clock)
        assert refused.value.locked_until is None
    with pytest.raises(SignInRefused) as refused:
        accounts.sign_in("王网格", "wrong-password", clock=clock)
    assert refused.value.locked_until == T0 + lock_for(FREE_ATTEMPTS) == T0 + timedelta(minutes=1)
    # Locked: even the right password is refused until the lock ends, and the page says until when.
    with pytest.raises(SignInRefused):
        accounts.sign_in("王网格", PASSWORD, clock=clock)
    page = console.sign_in("王网格")
    assert page.status_code == 401 and "锁定" in page.text
    clock.advance(minutes=1, seconds=1)
    with pytest.raises(SignInRefused) as refused:
        accounts.sign_in("王网格", "wrong-again", clock=clock)
    assert refused.value.locked_until == clock.now() + timedelta(minutes=2)  # doubled
    clock.advance(minutes=3)
    assert accounts.sign_in("王网格", PASSWORD, clock=clock).failed_attempts == 0
    assert lock_for(100) == timedelta(hours=1)
    assert "locked" in [e.event for e in accounts.events("王网格")]


def test_disable_and_password_reset_end_open_sessions(console):
    assert console.sign_in("王网格").status_code == 302
    assert console.client.get("/console/tasks").status_code == 200
    console.engine.accounts.reset_password("王网格", "another-pass-456", by="admin")
    assert console.client.get("/console/tasks").status_code == 302  # the old session is over
    assert console.sign_in("王网格", "another-pass-456").status_code == 302
    console.engine.accounts.disable("王网格", by="admin")
    assert console.client.get("/console/tasks").status_code == 302
    refused = console.sign_in("王网格", "another-pass-456")
    assert refused.status_code == 401 and "停用" in refused.text


def test_accounts_are_principals_checked_like_tokens(engine):
    with pytest.raises(InvalidCommand, match="grid"):
        engine.accounts.add("无网格", "grid_worker", PASSWORD, by="t")
    with pytest.raises(InvalidCommand, match="at least"):
        engine.accounts.add("短密码", "auditor", "short", by="t")
    engine.accounts.add("纪检组", "auditor", PASSWORD, by="t")
    with pytest.raises(Conflict):
        engine.accounts.add("纪检组", "auditor", PASSWORD, by="t")
    account = engine.accounts.get("纪检组")
    assert account.principal.role == "auditor"
    assert "argon2" not in repr(account) and PASSWORD not in repr(engine.accounts.list())


def test_every_form_needs_its_csrf_token(console):
    console.sign_in("王网格")
    for path in ("/console/report", "/console/sign-out", "/console/language", "/console/tasks/1/complete"):
        refused = console.client.post(path, data={"title": "x"})
        assert refused.status_code == 400, path
        assert "表单已过期" in refused.text or "reload" in refused.text
    forged = console.client.post("/console/report", data={"csrf_token": "forged", "title": "x"})
    assert forged.status_code == 400
    assert console.engine.queries.search_cases(None).total == 0


def test_security_headers_and_no_inline_script(console):
    assert "script-src 'self'" in console.client.get("/console/sign-in").headers["Content-Security-Policy"]
    console.sign_in("王网格")
    case_id = console.report()
    for path in ("/console/tasks", f"/console/cases/{case_id}", "/console/report",
                 "/console/dashboard", "/console/registry"):
        page = console.client.get(path)
        assert page.status_code == 200, path
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "http" not in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
        for script in re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S):
            assert 'src="/console/static/' in script[0] and not script[1].strip(), (path, script)
        assert not re.search(r"<[^>]+\son[a-z]+=", page.text), path  # no inline event handlers
        assert not re.search(r"""(src|href)=["']https?://""", page.text), path
    # The API keeps its own behaviour: no cookie, no CSP of the console.
    assert "Content-Security-Policy" not in console.client.get("/openapi.json").headers


def test_output_is_escaped(console):
    console.sign_in("王网格")
    case_id = console.report(title="<script>alert(1)</script>")
    page = console.client.get(f"/console/cases/{case_id}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_worker_cannot_open_another_grids_case(console):
    console.sign_in("王网格")
    case_id = console.report()
    task = console.task_of(case_id, "verify_register")
    console.sign_in("赵网格")
    for path in (f"/console/cases/{case_id}", f"/console/cases/{case_id}/path.json", f"/console/tasks/{task}"):
        assert console.client.get(path).status_code == 404, path
    assert console.post(f"/console/tasks/{task}/complete", {"field_verified": "true",
                                                            "field_within_authority": "false"}).status_code == 404
    listed = console.client.get("/console/cases").text
    assert 'id="case-total">0 ' in listed and f'/console/cases/{case_id}"' not in listed
    assert console.engine.queries.case(case_id).status == "reported"  # nothing was done


def test_the_verify_form_offers_the_catalogs_sub_categories(console):
    """Intake needs a sub-category by registration; verify may set or correct it, so its form offers the
    admission catalog's codes (with their names) instead of asking a user to know them."""
    from rules.catalog import shipped_catalog
    console.sign_in("王网格")
    case_id = console.report()
    page = console.client.get(f"/console/tasks/{console.task_of(case_id, 'verify_register')}").text
    assert 'name="field_sub_category" list="field_sub_category_choices"' in page
    offered = re.findall(r'<datalist id="field_sub_category_choices">(.*?)</datalist>', page, re.S)[0]
    assert re.findall(r'value="([^"]+)"', offered) == list(shipped_catalog().codes)
    assert 'value="road_lighting" label="' in offered
    console.complete(case_id, "verify_register", verified=True, within_authority=False,
                     sub_category="road_lighting")
    assert console.engine.queries.case(case_id).status != "reported"


def test_a_unit_sees_masked_data_and_an_agency_unmasked_with_the_read_logged(console):
    case_id = console.dispatched()
    console.sign_in("区城管局")
    page = console.client.get(f"/console/cases/{case_id}").text
    assert 'data-state="masked"' in page and REPORTER["phone"] not in page and REPORTER["name"] not in page
    task_page = console.client.get(f"/console/tasks/{console.task_of(case_id, 'handle')}").text
    assert REPORTER["phone"] not in task_page
    console.sign_in("东风社区网格站")
    page = console.client.get(f"/console/cases/{case_id}").text
    assert 'data-state="unmasked"' in page and REPORTER["phone"] in page
    assert any(r.user == "东风社区网格站" and r.case_id == case_id for r in console.engine.access_log.reads(case_id))


def test_unit_actions_go_through_the_commands_with_the_account_as_actor(console):
    case_id = console.dispatched()
    handle = console.task_of(case_id, "handle")
    console.sign_in("区城管局")
    assert console.post(f"/console/tasks/{handle}/return", {"reason": ""}).status_code == 302
    assert console.engine.queries.case(case_id).status == "dispatched"  # no reason: refused, shown as a message
    assert console.post(f"/console/tasks/{handle}/sign").status_code == 302
    assert console.post(f"/console/tasks/{handle}/extension", {"days": "2", "reason": "需采购"}).status_code == 302
    console.sign_in("王网格")  # not the dispatching agency: the engine refuses
    assert console.post(f"/console/tasks/{handle}/extension/decision", {"approve": "true"}).status_code == 403
    console.sign_in("东风社区网格站")
    assert console.post(f"/console/tasks/{handle}/extension/decision", {"approve": "true"}).status_code == 302
    console.sign_in("区城管局")
    bad = console.post(f"/console/tasks/{handle}/complete", {"field_final": "maybe"})
    assert bad.status_code == 302 and f"/console/tasks/{handle}" in bad.location
    follow = console.client.get(bad.location).text
    assert "result" in follow and "必填" in follow
    console.complete(case_id, "handle", result="更换灯具", final=True)
    history = console.engine.queries.history(case_id)
    actors = {e.command: e.actor for e in history}
    assert actors["sign_for"] == "区城管局" and actors["decide_extension"] == "东风社区网格站"
    assert console.engine.queries.case(case_id).status == "verifying"


def test_report_refuses_the_negative_list_citing_article_14(console):
    console.sign_in("王网格")
    refused = console.post("/console/report", {"title": "办执照", "sub_category": "administrative_licensing_decision"})
    assert refused.status_code == 422 and "第十四条" in refused.text and 'id="refusal-article"' in refused.text
    missing = console.post("/console/report", {"title": ""})
    assert missing.status_code == 422 and 'id="report-problems"' in missing.text
    console.sign_in("区城管局")
    assert console.client.get("/console/report").status_code == 403


def test_diagram_path_marks_what_was_done(console):
    case_id = console.dispatched()
    console.sign_in("东风社区网格站")
    path = console.client.get(f"/console/cases/{case_id}/path.json").json
    assert {"verify_register", "accept_report", "dispatch"} <= set(path["done"])
    assert "handle" in path["active"] and "self_handle" not in path["done"]
    assert path["diagram"].lstrip().startswith("<?xml") or "<bpmn:definitions" in path["diagram"]
    assert any(w["due_at"] for w in path["waiting"])  # the handling deadline's timer


def test_dashboard_charts_drill_down_and_deadline_board(console):
    case_id = console.dispatched()
    console.sign_in("街道网格中心")
    page = console.client.get("/console/dashboard?month=2026-11")
    assert page.status_code == 200 and 'id="tiles"' in page.text
    data = console.client.get("/console/dashboard/data.json?month=2026-11").json
    assert data["groups"] and sum(g["values"]["reported"] for g in data["groups"]) == 1
    drill = data["groups"][0]["drill"]["reported"]
    listed = console.client.get(drill)
    assert listed.status_code == 200 and f'/console/cases/{case_id}"' in listed.text
    console.sign_in("赵网格")  # the same drill-down link, another grid's worker: nothing of it
    assert f'/console/cases/{case_id}"' not in console.client.get(drill).text
    console.clock.advance(days=30)
    console.sign_in("东风社区网格站")
    board = console.client.get("/console/dashboard?month=2026-11").text
    assert f"#{case_id}" in board.split('id="deadline-board"')[1].split('id="board-yellow"')[0]  # red
    tasks = console.client.get("/console/tasks").text
    assert f'/console/cases/{case_id}"' in tasks.split('id="overdue-cases"')[1]


def test_registry_pages_and_import_problems_by_row_and_column(console):
    console.engine.registry.load_sample("admin")
    console.sign_in("王网格")
    page = console.client.get("/console/registry")
    assert page.status_code == 200 and GRID in page.text and 'id="check-link"' not in page.text
    grid = console.client.get(f"/console/registry/grids/{GRID}").text
    assert 'id="workers"' in grid and 'id="lineage"' not in grid
    assert console.client.get(f"/console/registry/grids/{GRID}/notice").status_code == 200
    assert console.client.get("/console/registry/check").status_code == 403
    assert console.client.get("/console/registry/import").status_code == 403
    console.sign_in("流程管理员")
    assert 'id="lineage"' in console.client.get(f"/console/registry/grids/{GRID}").text
    assert console.client.get("/console/registry/check").status_code == 200
    sheet = ("code,name,grid_type,households,community_code,boundary,effective_from\n"
             "410702001001X001,坏网格,X,abc,410702001001,某处,2026-13-01\n").encode()
    refused = console.post("/console/registry/import", {"kind": "grids", "file": (io.BytesIO(sheet), "grids.csv")},
                           content_type="multipart/form-data")
    assert refused.status_code == 422 and 'id="problems"' in refused.text
    rows = re.findall(r"<tr><td>grids.csv</td><td>(\d+)</td><td>([^<]*)</td>", refused.text)
    assert ("2", "households") in rows or any(r[0] == "2" for r in rows), rows


def test_english_switch_and_every_nav_link_answers(console):
    for name in ("王网格", "东风社区网格站", "区城管局", "纪检组", "流程管理员", "市平台"):
        console.sign_in(name)
        home = console.client.get("/console/")
        assert home.status_code == 302
        page = console.client.get(home.location)
        assert page.status_code == 200, (name, home.location)
        for href in re.findall(r'<ul id="nav">(.*?)</ul>', page.text, re.S)[0].split('href="')[1:]:
            assert console.client.get(href.split('"')[0]).status_code == 200, (name, href)
    console.client.post("/console/language", data={"lang": "en", "next": "/console/registry",
                                                   "csrf_token": console.token("/console/registry")})
    assert "Registry" in console.client.get("/console/registry").text


def test_users_command_line(db_url):
    runner = CliRunner()
    run = lambda *args, **kw: runner.invoke(main, ["--db", db_url, "users", *args], **kw)  # noqa: E731
    added = run("add", "李网格", "--role", "grid_worker", "--grid", OTHER_GRID, "--password-stdin",
                input="a-good-password\n")
    assert added.exit_code == 0 and "added" in added.output, added.output
    bad = run("add", "无区域", "--role", "grid_agency", "--level", "community", "--password-stdin", input="x" * 12)
    assert bad.exit_code == 1 and "area" in bad.output
    listed = run("list")
    assert "李网格" in listed.output and OTHER_GRID in listed.output and "active" in listed.output
    assert run("disable", "李网格").exit_code == 0 and "disabled" in run("list").output
    assert run("enable", "李网格").exit_code == 0
    reset = run("reset-password", "李网格", "--password-stdin", input="short\n")
    assert reset.exit_code == 1 and "at least" in reset.output
    assert run("reset-password", "李网格", "--password-stdin", input="another-good-one\n").exit_code == 0
    assert run("disable", "无此人").exit_code == 1
    assert "password_reset" in run("log").output
