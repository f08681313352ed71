"""The statutory lifecycle through the engine: intake checked against the registry, registered units, the
sub-category at registration, the city level, suspension, reopening, staged feedback, joint handling,
duplicates and withdrawal. Every case here must replay bit-exact. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.errors import InvalidCommand, NotFound
from engine.store.models import OutboxEvent
from tests.conftest import grid_matter_upload
from tests.test_cases import MATTER, Walk

AGENCY = dict(actor="东风社区网格站", role="grid_agency")
UNIT = dict(actor="unit", role="responsible_unit")


def replays(engine, *case_ids):
    for case_id in case_ids:
        result = engine.audit.replay(case_id)
        assert result.divergence is None and result.cannot is None, (case_id, result.divergence, result.cannot)


def task_of(engine, case_id, element, unit=None):
    found = [t for t in engine.queries.tasks(case_id=case_id)
             if t.element_id == element and (unit is None or t.unit == unit)]
    assert found, (element, unit)
    return found[0]


# --- intake and dispatch against the registry -----------------------------------------------------------

@pytest.mark.parametrize("grid, message", [
    ("NOPE", "not a grid code"),
    ("410702001001U099", "not in the registry"),
    (None, "names the grid"),
])
def test_a_report_names_a_grid_in_force(deployed, clock, grid, message):
    with pytest.raises(InvalidCommand, match=message) as refused:
        deployed.cases.start("grid_matter", {**MATTER, "grid_code": grid}, actor="p", role="platform", clock=clock)
    assert refused.value.zh  # the same refusal in Chinese


def test_a_retired_grid_code_is_refused_and_the_empty_registry_says_so(engine, clock):
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    with pytest.raises(InvalidCommand, match="registry is empty.*gridflow registry sample") as refused:
        engine.cases.start("grid_matter", MATTER, actor="p", role="platform", clock=clock)
    assert "gridflow registry sample" in refused.value.zh
    engine.registry.load_sample("admin", clock=clock)
    clock.advance(days=1)
    engine.registry.recode_grid(MATTER["grid_code"], "410702001001U099", "admin", (clock.now() + timedelta(days=1)).date(),
                                clock=clock)
    clock.advance(days=2)
    with pytest.raises(InvalidCommand, match="was retired on"):
        engine.cases.start("grid_matter", MATTER, actor="p", role="platform", clock=clock)
    engine.cases.start("grid_matter", {**MATTER, "grid_code": "410702001001U099"}, actor="p", role="platform",
                       clock=clock)


def test_a_dispatch_names_registered_units(deployed, clock):
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    task = walk.task("dispatch")
    for data, message in (({"unit": "no_such_unit"}, "not registered units.*no_such_unit"),
                          ({"unit": "hq_ludeng", "assisting_units": ["ghost"]}, "not registered units.*ghost"),
                          ({"unit": "hq_ludeng", "assisting_units": ["hq_ludeng"]}, "named twice"),
                          ({"unit": "hq_ludeng", "assisting_units": ["hq_power"] * 6}, "at most 5")):
        with pytest.raises(InvalidCommand, match=message) as refused:
            deployed.cases.complete_task(task.id, {**data, "handling_days": 2}, clock=clock, **AGENCY)
        assert refused.value.zh
    assert walk.view.status == "escalated" and walk.task("dispatch").state == "offered"
    walk.do("dispatch", unit="hq_ludeng", handling_days=2)
    assert walk.task("handle").unit == "hq_ludeng"


def test_a_matter_is_classified_by_registration_and_checked_on_that_kind(deployed, clock):
    unclassified = {k: v for k, v in MATTER.items() if k != "sub_category"}
    walk = Walk(deployed, clock, data=unclassified)
    with pytest.raises(InvalidCommand, match="registered with its sub-category"):
        walk.do("verify_register", verified=True, within_authority=False)
    with pytest.raises(InvalidCommand, match="第十四条|negative"):   # the kind verification gives is checked
        walk.do("verify_register", verified=True, within_authority=False, sub_category="administrative_penalty")
    with pytest.raises(InvalidCommand, match="admission catalog"):
        walk.do("verify_register", verified=True, within_authority=False, sub_category="made_up_kind")
    walk.do("verify_register", verified=True, within_authority=False, sub_category="manhole_cover_missing")
    assert walk.view.status == "escalated" and walk.view.sub_category == "manhole_cover_missing"
    # A verification that leaves the kind out keeps the reported one.
    kept = Walk(deployed, clock).do("verify_register", verified=True, within_authority=False)
    assert kept.view.sub_category == "road_lighting"
    replays(deployed, walk.id, kept.id)


def test_the_city_dispatches_from_its_own_table_and_nothing_goes_above_it(deployed, clock):
    walk = Walk(deployed, clock).do("verify_register", verified=True, within_authority=False)
    for _ in range(3):   # community → township → county → city
        walk.do("accept_report", decision="escalate")
    assert walk.task("accept_report").agency_level == "city"
    with pytest.raises(InvalidCommand, match="top level.*第十七条") as refused:
        walk.do("accept_report", decision="escalate")
    assert "第十七条" in refused.value.zh
    walk.do("accept_report", decision="file").do("dispatch", handling_days=3)
    assert walk.task("handle").unit == "xx_chengguan" and walk.view.status == "dispatched"
    replays(deployed, walk.id)


def test_an_unknown_year_names_the_command_that_adds_it(deployed, clock):
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    clock.advance(days=400)   # into a year the calendar has no schedule for
    task = walk.task("dispatch")
    with pytest.raises(InvalidCommand) as refused:
        deployed.cases.complete_task(task.id, {"unit": "hq_ludeng", "handling_days": 2}, clock=clock, **AGENCY)
    text = str(refused.value)
    assert "gridflow calendar add-year" in text and "with_year" not in text and "=" not in text.split(":")[-1]


# --- suspension, reopening, staged feedback -----------------------------------------------------------------

def test_a_suspended_matter_leaves_the_clock_and_resumes_with_the_time_left(deployed, clock):
    walk = Walk(deployed, clock).dispatched(unit="hq_ludeng", days=3).sign()
    [timer] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    left = timer.due_at - clock.now()
    with pytest.raises(InvalidCommand, match="needs a reason"):
        deployed.cases.suspend(walk.id, " ", clock=clock, **AGENCY)
    deployed.cases.suspend(walk.id, "待燃气管网改造完成", clock=clock, **AGENCY)
    view = walk.view
    assert view.status == "suspended" and view.suspended_at == clock.now()
    clock.advance(days=30)   # far past the old deadline: nothing fires, nothing counts as overdue
    deployed.timers.sweep(clock)
    assert walk.task("handle").state == "signed_for"
    assert deployed.queries.operational_counts(clock.now())["overdue_cases"] == 0
    assert deployed.queries.search_cases(overdue=True).total == 0
    assert all(s.case_id != walk.id for s in deployed.deadlines.standing(clock.now()))
    deployed.cases.resume(walk.id, clock=clock, **AGENCY)
    [timer] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    assert walk.view.status == "in_progress" and timer.due_at == clock.now() + left
    with pytest.raises(InvalidCommand, match="not suspended"):
        deployed.cases.resume(walk.id, clock=clock, **AGENCY)
    clock.advance(seconds=left.total_seconds() + 1)
    deployed.timers.sweep(clock)
    assert walk.view.status == "overdue"
    commands = [e.command for e in deployed.queries.history(walk.id)]
    assert "suspend" in commands and "resume" in commands
    replays(deployed, walk.id)


def test_an_unsatisfied_follow_up_reopens_the_matter(deployed, clock):
    walk = Walk(deployed, clock).dispatched().sign().do("handle", result="ok")
    walk.do("check_result", passed=True).do("close_case")
    deployed.cases.send_message(walk.id, "resident_follow_up", {"satisfied": False}, actor="p", role="platform",
                                clock=clock)
    assert walk.view.status == "reopened"
    last = deployed.queries.history(walk.id)[-1]
    assert last.status_after == "reopened"
    walk.do("dispatch", unit="hq_ludeng", handling_days=2)
    assert walk.view.status == "dispatched"
    replays(deployed, walk.id)


def test_staged_feedback_keeps_the_task_open(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    handle = walk.task("handle")
    with pytest.raises(InvalidCommand, match="sign for"):
        deployed.cases.complete_task(handle.id, {"result": "已勘查", "final": False}, clock=clock, **UNIT)
    walk.sign()
    deployed.cases.complete_task(handle.id, {"result": "已勘查，待备件", "final": False}, clock=clock, **UNIT)
    assert walk.view.status == "in_progress" and walk.task("handle").state == "in_progress"
    assert deployed.queries.history(walk.id)[-1].command == "progress"
    deployed.cases.complete_task(handle.id, {"result": "已更换", "final": True}, clock=clock, **UNIT)
    assert walk.view.status == "verifying"
    replays(deployed, walk.id)


# --- joint handling -----------------------------------------------------------------------------------------

def test_assisting_units_get_their_own_tasks_and_the_lead_decides(deployed, clock):
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    walk.do("dispatch", unit="hq_ludeng", assisting_units=["hq_power", "hq_huanwei"], handling_days=3)
    assists = [t for t in deployed.queries.tasks(case_id=walk.id) if t.element_id == "assist"]
    assert sorted((t.role, t.unit) for t in assists) == [("responsible_unit", "hq_huanwei"),
                                                          ("responsible_unit", "hq_power")]
    power = task_of(deployed, walk.id, "assist", "hq_power")
    with pytest.raises(InvalidCommand, match="sign for"):
        deployed.cases.complete_task(power.id, {"result": "x"}, clock=clock, **UNIT)
    deployed.cases.sign_for(power.id, clock=clock, **UNIT)
    assert walk.view.status == "dispatched"     # an assisting unit's signing does not move the matter
    deployed.cases.complete_task(power.id, {"result": "线路已抢修"}, clock=clock, **UNIT)
    assert walk.view.status == "dispatched"     # nor does its feedback: the lead's final feedback does
    walk.sign().do("handle", result="灯具已更换，协办单位已抢修线路", final=True)
    assert walk.view.status == "verifying"
    states = {(t.element_id, t.unit): t.state for t in deployed.queries.tasks(case_id=walk.id, open_only=False)}
    assert states[("assist", "hq_power")] == "completed" and states[("assist", "hq_huanwei")] == "cancelled"
    replays(deployed, walk.id)


def test_a_routed_dispatch_brings_the_tables_assisting_units(deployed, clock):
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False)
    walk.do("accept_report", decision="escalate").do("accept_report", decision="file")   # township
    walk.do("dispatch", handling_days=3)
    assert walk.task("handle").unit == "hq_ludeng"
    assert [t.unit for t in deployed.queries.tasks(case_id=walk.id) if t.element_id == "assist"] == ["hq_power"]
    walk.give_back("不属本所职责")   # a return ends the assistance too; the new dispatch brings its own
    assert [t for t in deployed.queries.tasks(case_id=walk.id) if t.element_id == "assist"] == []
    replays(deployed, walk.id)


# --- duplicates and withdrawal ------------------------------------------------------------------------------

def test_a_duplicate_is_suggested_linked_and_closed_with_its_master(deployed, clock):
    master = Walk(deployed, clock)
    clock.advance(hours=2)
    duplicate = Walk(deployed, clock)
    elsewhere = Walk(deployed, clock, data={**MATTER, "grid_code": "410702001001U002"})
    assert [c.id for c in deployed.queries.duplicate_candidates(duplicate.id)] == [master.id]
    assert deployed.queries.duplicate_candidates(duplicate.id, window_days=0.01) == []
    with pytest.raises(InvalidCommand, match="same grid"):
        deployed.cases.link_duplicate(elsewhere.id, master.id, actor="p", role="platform", clock=clock)
    with pytest.raises(NotFound):
        deployed.cases.link_duplicate(duplicate.id, 999, actor="p", role="platform", clock=clock)
    deployed.cases.link_duplicate(duplicate.id, master.id, actor="p", role="platform", clock=clock)
    view = duplicate.view
    assert view.duplicate_of == master.id and view.open_tasks == []
    with pytest.raises(InvalidCommand, match="duplicate of case"):
        deployed.cases.link_duplicate(duplicate.id, master.id, actor="p", role="platform", clock=clock)
    with deployed.sessions() as session:
        linked = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.kind == "case.duplicate_linked")).all()
        assert [(e.case_id, e.payload["duplicate_of"]) for e in linked] == [(duplicate.id, master.id)]
    master.dispatched().sign().do("handle", result="ok").do("check_result", passed=True).do("close_case")
    assert master.view.status == "closed" and duplicate.view.status == "closed"
    history = deployed.queries.history(duplicate.id)
    assert [e.command for e in history][-2:] == ["link_duplicate", "close_duplicate"]
    replays(deployed, master.id, duplicate.id)


def test_the_platform_withdraws_before_dispatch_the_agency_after(deployed, clock):
    early = Walk(deployed, clock)
    with pytest.raises(InvalidCommand, match="needs a reason"):
        deployed.cases.withdraw(early.id, "", actor="p", role="platform", clock=clock)
    deployed.cases.withdraw(early.id, "上报人已自行解决", actor="p", role="platform", clock=clock)
    assert early.view.status == "cancelled" and early.view.open_tasks == []
    assert early.view.finished_at is not None
    late = Walk(deployed, clock).dispatched()
    with pytest.raises(InvalidCommand, match="only the agency"):
        deployed.cases.withdraw(late.id, "上报人撤回", actor="p", role="platform", clock=clock)
    deployed.cases.withdraw(late.id, "经核实为重复上报", clock=clock, **AGENCY)
    assert late.view.status == "cancelled" and deployed.timers.pending(late.id) == []
    assert deployed.queries.history(late.id)[-1].command == "withdraw"
    replays(deployed, early.id, late.id)


def test_urgent_recomputes_the_running_deadline_from_the_table(deployed, clock):
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    walk.do("dispatch", unit="hq_ludeng")   # the table's deadline for a normal road_lighting matter
    [before] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    with pytest.raises(InvalidCommand, match="needs a reason"):
        deployed.cases.set_urgency(walk.id, "urgent", "", clock=clock, **AGENCY)
    deployed.cases.set_urgency(walk.id, "urgent", "涉及夜间出行安全", clock=clock, **AGENCY)
    [after] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    assert after.due_at < before.due_at
    event = deployed.queries.history(walk.id)[-1]
    assert event.command == "set_urgency" and event.effects["urgency"]["reason"] == "涉及夜间出行安全"
    assert event.effects["urgency"]["deadlines"][0]["to"] == after.due_at.isoformat()
    with pytest.raises(InvalidCommand, match="already"):
        deployed.cases.set_urgency(walk.id, "urgent", "再次", clock=clock, **AGENCY)
    replays(deployed, walk.id)
