"""County matter lists in the engine (条例 §13–§14): changed only through their approval process, enforced
when a task would go to a grid worker, and refusable by the worker — each step recorded in history."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from engine.definitions.bundle import DefinitionRejected
from engine.clock import FixedClock
from engine.errors import InvalidCommand
from engine.cases.history import verify_chain
from engine.store.models import Filing, HistoryEvent
from tests.conftest import PROCESSES, T0, registered

COUNTY = "410702"
GRID = "410702001001U001"
OTHER_COUNTY_GRID = "410703001001U001"
ON_LIST = ["population_info_update", "public_opinion", "road_lighting", "water_supply_outage"]
OFF_LIST = "heating_failure"


@pytest.fixture
def lists(engine, clock):
    registered(engine, clock)
    # A grid in a second county, which has filed no matter list.
    engine.registry.import_csv("divisions", "code,name,level,parent_code,supervision_phone\n"
                               "410703,卫滨区,county,410700,\n410703001,中同街道,township,410703,\n"
                               "410703001001,中同社区,community,410703001,\n".encode(), "admin", clock=clock)
    engine.registry.import_csv("grids", "code,name,grid_type,households,community_code,boundary,effective_from\n"
                               f"{OTHER_COUNTY_GRID},中同社区第一网格,U,400,410703001001,中同街以北,2026-01-01\n"
                               .encode(), "admin", clock=clock)
    engine.definitions.deploy({f: (PROCESSES / f).read_bytes() for f in ("grid_matter.bpmn",
                                                                           "matter_list_change.bpmn")},
                              "admin", clock)
    return engine


def apply(engine, clock, **change):
    data = {"county_code": COUNTY, "version": "2026.1", "effective_from": "2026-11-01", "reason": "初次制定",
            "applicant": "hq_civil_affairs", **change}
    return engine.cases.start("matter_list_change", data, actor="民政局", role="responsible_unit", clock=clock)


def open_task(engine, case_id):
    return engine.queries.case(case_id).open_tasks[0]


def approve(engine, case_id, clock):
    review = open_task(engine, case_id)
    assert (review.element_id, review.role, review.agency_level) == ("review_change", "grid_agency", "county")
    engine.cases.complete_task(review.id, {"accepted": True}, actor="县网格中心", role="grid_agency", clock=clock)
    agreement = open_task(engine, case_id)
    assert (agreement.element_id, agreement.role) == ("approve_change", "county_government")
    engine.cases.complete_task(agreement.id, {"approved": True, "opinion": "同意"}, actor="县政府",
                               role="county_government", clock=clock)


def adopt(engine, clock, **change):
    case_id = apply(engine, clock, **change)
    approve(engine, case_id, clock)
    return case_id


def events(engine, case_id):
    with engine.readers() as s:
        return list(s.scalars(sa.select(HistoryEvent).where(HistoryEvent.case_id == case_id)
                              .order_by(HistoryEvent.seq)))


def test_a_change_is_applied_reviewed_agreed_and_filed(lists, clock):
    case_id = adopt(lists, clock, add=ON_LIST)
    case = lists.queries.case(case_id)
    assert case.status == "filed" and case.finished_at is not None
    history = events(lists, case_id)
    assert [e.status_after for e in history] == ["applied", "reviewed", "filed"]
    assert [m[1] for m in history[-1].effects["status"]] == ["approved", "filed"]
    assert history[-1].effects["matter_list"] == {"county_code": COUNTY, "version": "2026.1"}
    assert verify_chain(case_id, history) is None
    (version,) = lists.matter_lists.versions(COUNTY)
    assert version.sub_categories == tuple(ON_LIST) and version.effective_from == date(2026, 11, 1)
    with lists.readers() as s:
        filing = s.scalars(sa.select(Filing).where(Filing.kind == "matter_list")).one()
    assert filing.payload["added"] == ON_LIST and filing.payload["case_id"] == case_id
    assert filing.payload["previous_version"] is None


def test_a_second_version_records_what_changed_and_takes_over_on_its_date(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    later = FixedClock(T0 + timedelta(days=3))
    adopt(lists, later, version="2026.2", effective_from="2026-12-01", add=["power_outage"], remove=["road_lighting"],
          reason="供电事项纳入", temporary=[{"sub_category": OFF_LIST, "reason": "冬季供暖专项",
                                        "expires_on": "2027-03-16"}])
    with lists.readers() as s:
        filing = s.scalars(sa.select(Filing).where(Filing.kind == "matter_list").order_by(Filing.id.desc())).first()
    assert filing.payload["previous_version"] == "2026.1"
    assert filing.payload["added"] == ["power_outage"] and filing.payload["removed"] == ["road_lighting"]
    assert filing.payload["temporary_added"][0]["sub_category"] == OFF_LIST
    assert lists.matter_lists.in_force(COUNTY, date(2026, 11, 30)).version == "2026.1"
    december = lists.matter_lists.in_force(COUNTY, date(2026, 12, 1))
    assert december.version == "2026.2"
    assert december.admits(OFF_LIST, date(2027, 3, 15)) and not december.admits(OFF_LIST, date(2027, 3, 16))
    assert not december.admits("road_lighting", date(2026, 12, 1))
    exported = lists.matter_lists.export_csv(COUNTY, date(2026, 12, 2)).decode("utf-8-sig").splitlines()
    assert exported[0] == "code,name,category,admission,expires_on,reason"
    assert any(line.startswith(f"{OFF_LIST},") and "temporary,2027-03-16,冬季供暖专项" in line for line in exported)


def test_rejection_needs_a_written_opinion_and_adopts_nothing(lists, clock):
    case_id = apply(lists, clock, add=ON_LIST)
    review = open_task(lists, case_id)
    with pytest.raises(InvalidCommand, match="needs a reason"):
        lists.cases.complete_task(review.id, {"accepted": False}, actor="县网格中心", role="grid_agency", clock=clock)
    assert lists.queries.case(case_id).status == "applied"   # the failed command changed nothing
    lists.cases.complete_task(review.id, {"accepted": False, "opinion": "与部门职责重复"}, actor="县网格中心",
                              role="grid_agency", clock=clock)
    assert lists.queries.case(case_id).status == "rejected"
    assert lists.matter_lists.versions(COUNTY) == []


def test_the_county_can_refuse_after_review(lists, clock):
    case_id = apply(lists, clock, add=ON_LIST)
    review = open_task(lists, case_id)
    lists.cases.complete_task(review.id, {"accepted": True}, actor="县网格中心", role="grid_agency", clock=clock)
    agreement = open_task(lists, case_id)
    with pytest.raises(InvalidCommand, match="county_government"):
        lists.cases.complete_task(agreement.id, {"approved": True}, actor="县网格中心", role="grid_agency", clock=clock)
    lists.cases.complete_task(agreement.id, {"approved": False, "opinion": "暂缓"}, actor="县政府",
                              role="county_government", clock=clock)
    assert [e.status_after for e in events(lists, case_id)] == ["applied", "reviewed", "rejected"]
    assert lists.matter_lists.versions(COUNTY) == []


@pytest.mark.parametrize("change, message", [
    ({"add": ["administrative_penalty_decision"]}, "第十四条"),
    ({"add": ["no_such_matter"]}, "not in the admission catalog"),
    ({"add": ON_LIST, "reason": ""}, "needs a reason"),
    ({"add": ON_LIST, "remove": ["road_lighting"]}, "does not have"),
    ({"add": ON_LIST, "effective_from": "next week"}, "is not a date"),
    ({}, "changes nothing"),
    ({"add": ON_LIST, "county_code": "4107"}, "6-digit county"),
    ({"temporary": [{"sub_category": OFF_LIST, "reason": "", "expires_on": "2026-12-01"}]}, "needs a reason"),
])
def test_an_application_that_could_never_be_adopted_is_refused_at_once(lists, clock, change, message):
    with pytest.raises(InvalidCommand, match=message):
        apply(lists, clock, **change)
    assert lists.queries.cases() == [] or all(c.process_key != "matter_list_change" for c in lists.queries.cases())


def test_a_change_starting_before_the_current_version_is_refused(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    with pytest.raises(InvalidCommand, match="after the current one"):
        apply(lists, clock, version="2026.2", effective_from="2026-10-01", add=["power_outage"])


def start_matter(engine, clock, role, sub_category=OFF_LIST, grid=GRID):
    return engine.cases.start("grid_matter", {"title": "供暖故障", "grid_code": grid, "sub_category": sub_category},
                              actor="someone", role=role, clock=clock)


def test_a_department_cannot_assign_a_grid_worker_a_matter_off_the_list(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    with pytest.raises(InvalidCommand, match="第十三条") as refused:
        start_matter(lists, clock, "platform")
    assert "heating_failure" in str(refused.value) and "2026.1" in str(refused.value)
    case_id = start_matter(lists, clock, "platform", sub_category="road_lighting")
    assert events(lists, case_id)[0].effects["matter_list"] == f"{COUNTY}/2026.1"


def test_a_county_without_a_list_is_not_checked(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    case_id = start_matter(lists, clock, "platform", grid=OTHER_COUNTY_GRID)
    assert "matter_list" not in events(lists, case_id)[0].effects
    task = open_task(lists, case_id)
    with pytest.raises(InvalidCommand, match="filed no grid matter list"):
        lists.cases.refuse_task(task.id, "不属于清单", actor="w1", role="grid_worker", clock=clock)


def test_a_grid_worker_may_refuse_work_off_the_list_and_the_refusal_is_recorded(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    case_id = start_matter(lists, clock, "grid_worker")   # he collected it himself: that is allowed
    task = open_task(lists, case_id)
    with pytest.raises(InvalidCommand, match="needs a reason"):
        lists.cases.refuse_task(task.id, " ", actor="w1", role="grid_worker", clock=clock)
    lists.cases.refuse_task(task.id, "供暖不在本县网格事项清单内", actor="w1", role="grid_worker", clock=clock)
    case = lists.queries.case(case_id)
    assert case.status == "not_filed" and case.finished_at is not None
    last = events(lists, case_id)[-1]
    assert last.command == "refuse" and last.payload["reason"] == "供暖不在本县网格事项清单内"
    assert "第十三条" in last.effects["refusal"]
    assert last.effects["tasks"][0][2:] == ["offered", "refused"]
    assert verify_chain(case_id, events(lists, case_id)) is None


def test_work_on_the_list_cannot_be_refused(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    case_id = start_matter(lists, clock, "grid_worker", sub_category="road_lighting")
    task = open_task(lists, case_id)
    with pytest.raises(InvalidCommand, match="is on the grid matter list"):
        lists.cases.refuse_task(task.id, "不想做", actor="w1", role="grid_worker", clock=clock)
    assert lists.queries.case(case_id).status == "reported"


def test_refusing_self_handling_sends_the_matter_up(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    case_id = start_matter(lists, clock, "grid_worker")
    verify = open_task(lists, case_id)
    lists.cases.complete_task(verify.id, {"verified": True, "within_authority": True}, actor="w1",
                              role="grid_worker", clock=clock)
    handle = open_task(lists, case_id)
    assert handle.element_id == "self_handle"
    lists.cases.refuse_task(handle.id, "清单外事项，请上级交办", actor="w1", role="grid_worker", clock=clock)
    case = lists.queries.case(case_id)
    assert case.status == "escalated" and open_task(lists, case_id).element_id == "accept_report"


def test_a_temporary_admission_counts_until_it_expires(lists, clock):
    adopt(lists, clock, add=ON_LIST, temporary=[{"sub_category": OFF_LIST, "reason": "寒潮应急",
                                                 "expires_on": "2026-11-10"}])
    start_matter(lists, FixedClock(datetime(2026, 11, 9, 8, tzinfo=timezone.utc)), "platform")
    with pytest.raises(InvalidCommand, match="expired on 2026-11-10"):
        start_matter(lists, FixedClock(datetime(2026, 11, 10, 1, tzinfo=timezone.utc)), "platform")


def test_a_definition_must_name_a_known_lifecycle_and_use_its_statuses(lists, clock):
    text = (PROCESSES / "matter_list_change.bpmn").read_text()
    with pytest.raises(DefinitionRejected, match="lifecycle='budget' is not known"):
        lists.definitions.deploy({"x.bpmn": text.replace('value="matter_list_change"', 'value="budget"').encode()},
                                 "admin", clock)
    with pytest.raises(DefinitionRejected, match="not a status"):
        lists.definitions.deploy({"x.bpmn": text.replace('value="reviewed"', 'value="dispatched"').encode()},
                                 "admin", clock)
    with pytest.raises(DefinitionRejected, match="does not allow"):
        lists.definitions.deploy({"x.bpmn": text.replace('name="status" value="approved"',
                                                         'name="status" value="rejected"').encode()},
                                 "admin", clock)


def test_a_list_file_with_problems_is_reported_by_row_and_applies_nothing(lists, clock):
    adopt(lists, clock, add=ON_LIST)
    text = ("code,name,category,admission,expires_on,reason\n"
            "road_lighting,,,permanent,,\n"
            ",,,permanent,,\n"
            "road_lighting,,,permanent,,\n"
            "heating_failure,,,temporary,,\n"
            "power_outage,,,forever,,\n")
    with pytest.raises(InvalidCommand) as refused:
        lists.matter_lists.change_from_file(COUNTY, "list.csv", text.encode())
    message = str(refused.value)
    for row, words in ((3, "empty"), (4, "appears twice"), (5, "needs expires_on and reason"), (6, "forever")):
        assert f"row {row}" in message and words in message
    change = lists.matter_lists.change_from_file(
        COUNTY, "list.csv", b"code\nroad_lighting\npublic_opinion\npower_outage\n")
    assert change == {"add": ["power_outage"], "remove": ["population_info_update", "water_supply_outage"],
                      "temporary": [], "remove_temporary": []}


def test_the_command_line_files_the_sample_list_and_a_worker_refuses(tmp_path):
    from tests.test_cli import gridflow
    assert "filed the sample matter list of 410702" in gridflow(tmp_path, "lists", "sample").stdout
    shown = gridflow(tmp_path, "lists", "show", "410702", "--date", "2026-11-27").stdout
    assert "heating_failure" in shown and "temporary" in shown and "wage_arrears" not in shown
    gridflow(tmp_path, "deploy", str(PROCESSES / "grid_matter.bpmn"))
    gridflow(tmp_path, "registry", "sample")
    refused = gridflow(tmp_path, "case", "start", "grid_matter", "--role", "platform", "--data",
                       '{"title": "欠薪", "grid_code": "410702001001U001", "sub_category": "wage_arrears"}',
                       check=False)
    assert refused.returncode == 1 and "第十三条" in refused.stderr and "Traceback" not in refused.stderr
    started = gridflow(tmp_path, "case", "start", "grid_matter", "--role", "grid_worker", "--data",
                       '{"title": "欠薪", "grid_code": "410702001001U001", "sub_category": "wage_arrears"}').stdout
    assert "verify_register" in started
    task_id = next(line.split()[0] for line in started.splitlines() if "verify_register" in line)
    out = gridflow(tmp_path, "task", "refuse", task_id, "--reason", "欠薪不在清单内，请转人社部门").stdout
    assert "status not_filed" in out
    exported = gridflow(tmp_path, "lists", "export", "410702", "--date", "2026-11-27").stdout
    assert exported.startswith("code,name,category,admission,expires_on,reason")


def test_the_catalog_exports_to_csv_and_excel_and_an_edited_copy_is_checked_by_row(tmp_path):
    from tests.test_cli import gridflow
    out = gridflow(tmp_path, "catalog", "export", "--format", "xlsx", "--out", str(tmp_path / "c.xlsx")).stdout
    assert "25 sub-categories" in out or "sub-categories" in out
    assert "no problems" in gridflow(tmp_path, "catalog", "check", str(tmp_path / "c.xlsx")).stdout
    exported = gridflow(tmp_path, "catalog", "export").stdout.splitlines()
    assert exported[0].startswith("code,name,category,handling_limit")
    (tmp_path / "bad.csv").write_text(exported[0] + "\n" + exported[1] + "\nBad Code,,nope\n" + exported[1] + "\n",
                                      encoding="utf-8")
    bad = gridflow(tmp_path, "catalog", "check", str(tmp_path / "bad.csv"), check=False)
    assert bad.returncode == 1
    assert "row 3, column code" in bad.stderr and "row 3, column category" in bad.stderr
    assert "row 4, column code" in bad.stderr and "already in row 2" in bad.stderr
