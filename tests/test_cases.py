"""The grid-matter process run through the engine: lifecycles, task lifecycle, messages, timers, pinning,
refusals, atomicity. Runs on SQLite and PostgreSQL."""
from datetime import timedelta

import pytest

from engine.errors import InvalidCommand, NotFound
from engine.store.models import Case, HistoryEvent
from tests.conftest import grid_matter_upload, registered

MATTER = {"title": "路灯损坏", "grid_code": "410702001001U001", "category": "民生事项服务", "sub_category": "road_lighting"}


def working_days_after(engine, moment, days):
    """Where the handling deadline of a dispatch at `moment` lands (end of the n-th working day)."""
    return engine.calendars.current()[1].add_working_days(moment, days)


class Walk:
    def __init__(self, engine, clock, data=MATTER, **start):
        self.engine, self.clock = engine, clock
        self.id = engine.cases.start("grid_matter", dict(data), actor="w1", role="grid_worker", clock=clock, **start)

    def task(self, element):
        found = [t for t in self.engine.queries.tasks(case_id=self.id) if t.element_id == element]
        assert found, f"no open {element}; open: {[t.element_id for t in self.engine.queries.tasks(case_id=self.id)]}"
        return found[0]

    def do(self, element, **data):
        self.clock.advance(minutes=10)
        task = self.task(element)
        self.engine.cases.complete_task(task.id, data, actor="someone", role=task.role, clock=self.clock)
        return self

    def sign(self):
        task = self.task("handle")
        self.engine.cases.sign_for(task.id, actor="unit", role="responsible_unit", clock=self.clock)
        return self

    def give_back(self, reason="不属本单位职责"):
        task = self.task("handle")
        self.engine.cases.return_task(task.id, reason, actor="unit", role="responsible_unit", clock=self.clock)
        return self

    @property
    def view(self):
        return self.engine.queries.case(self.id)

    @property
    def open(self):
        return sorted(t.element_id for t in self.view.open_tasks)

    def statuses(self):
        moves = [m for e in self.engine.queries.history(self.id) for m in e.effects["status"]]
        return [moves[0][0]] + [m[1] for m in moves]

    def dispatched(self, unit="路灯所", days=3):
        self.do("verify_register", verified=True, within_authority=False)
        self.do("accept_report", decision="file")
        self.do("dispatch", unit=unit, handling_days=days)
        return self


def test_self_handled_matter(deployed, clock):
    walk = Walk(deployed, clock)
    assert walk.view.status == "reported" and walk.open == ["verify_register"]
    walk.do("verify_register", verified=True, within_authority=True)
    assert walk.view.status == "self_handling"
    walk.do("self_handle", resolved=True, result="已清理")
    view = walk.view
    assert view.status == "self_resolved" and view.finished_at is not None and view.open_tasks == []
    assert walk.statuses() == [None, "reported", "registered", "self_handling", "self_resolved"]


def test_escalated_dispatched_signed_handled_checked_closed_and_evaluated(deployed, clock):
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False)
    assert walk.view.status == "escalated" and walk.task("accept_report").agency_level == "community"
    walk.do("accept_report", decision="escalate")
    assert walk.task("accept_report").agency_level == "township" and walk.view.level == "township"
    walk.do("accept_report", decision="file")
    walk.do("dispatch", unit="红旗区城市照明管理所", handling_days=3)
    handle = walk.task("handle")
    assert (handle.role, handle.unit, handle.state) == ("responsible_unit", "红旗区城市照明管理所", "offered")
    assert walk.view.status == "dispatched"
    walk.sign()
    assert walk.view.status == "in_progress" and walk.task("handle").state == "signed_for"
    walk.do("handle", result="更换灯具", final=True)
    assert walk.view.status == "verifying" and walk.open == ["check_result"]
    walk.do("check_result", passed=True)
    walk.do("close_case", summary="办结")
    assert walk.view.status == "closed"
    deployed.cases.send_message(walk.id, "resident_follow_up", {"satisfied": True}, actor="回访",
                                role="platform", clock=clock)
    assert walk.view.status == "evaluated" and walk.view.finished_at is not None
    assert walk.statuses() == [None, "reported", "registered", "escalated", "dispatched", "in_progress",
                               "feedback_submitted", "verifying", "closed", "evaluated"]


def test_returned_by_a_unit_and_redispatched(deployed, clock):
    walk = Walk(deployed, clock).dispatched(unit="市场监管所")
    walk.give_back("油烟属生态环境部门职责")
    view = walk.view
    assert view.status == "returned" and walk.open == ["dispatch"]
    returned = deployed.queries.tasks(case_id=walk.id, open_only=False)
    assert [(t.element_id, t.state, t.return_reason) for t in returned if t.element_id == "handle"] == \
        [("handle", "returned", "油烟属生态环境部门职责")]
    walk.do("dispatch", unit="生态环境分局", handling_days=5)
    assert walk.view.status == "dispatched" and walk.task("handle").unit == "生态环境分局"
    walk.sign().do("handle", result="整改完毕")
    walk.do("check_result", passed=False, comment="仍有油烟")
    assert walk.view.status == "rework" and walk.open == ["redo"]
    walk.do("redo", result="加装管道").do("check_result", passed=True).do("close_case")
    assert walk.view.status == "closed"


def test_not_filed_needs_a_reason(deployed, clock):
    walk = Walk(deployed, clock)
    task = walk.task("verify_register")
    with pytest.raises(InvalidCommand, match="not_filed .*needs a reason"):
        deployed.cases.complete_task(task.id, {"verified": False, "within_authority": False}, actor="w",
                                     role="grid_worker", clock=clock)
    assert walk.view.status == "reported" and walk.open == ["verify_register"]
    walk.do("verify_register", verified=False, within_authority=False, reason="不属实")
    assert walk.view.status == "not_filed"


def test_form_data_is_checked_and_nothing_changes_on_refusal(deployed, clock):
    walk = Walk(deployed, clock)
    task = walk.task("verify_register")
    before = len(deployed.queries.history(walk.id))
    for data, message in [({"verified": "yes", "within_authority": True}, "verified: expected bool"),
                          ({"within_authority": True}, "verified: required"),
                          ({"verified": True, "within_authority": True, "returned": True}, "returned: not a field"),
                          ({"__class__": 1}, "identifiers")]:
        with pytest.raises(InvalidCommand, match=message):
            deployed.cases.complete_task(task.id, data, actor="w", role="grid_worker", clock=clock)
    assert len(deployed.queries.history(walk.id)) == before and walk.task("verify_register").state == "offered"


def test_sign_for_is_required_before_handling_and_roles_must_match(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    handle = walk.task("handle")
    with pytest.raises(InvalidCommand, match="sign for the task"):
        deployed.cases.complete_task(handle.id, {"result": "x"}, actor="u", role="responsible_unit", clock=clock)
    with pytest.raises(InvalidCommand, match="for the responsible_unit role"):
        deployed.cases.sign_for(handle.id, actor="w", role="grid_worker", clock=clock)
    dispatch_done = [t for t in deployed.queries.tasks(case_id=walk.id, open_only=False) if t.element_id == "verify_register"]
    with pytest.raises(InvalidCommand, match="is completed"):
        deployed.cases.complete_task(dispatch_done[0].id, {}, actor="w", role="grid_worker", clock=clock)
    walk.sign()
    with pytest.raises(InvalidCommand, match="cannot sign_for a task that is signed_for"):
        walk.sign()


def test_return_needs_a_reason_and_is_bounded(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    handle = walk.task("handle")
    with pytest.raises(InvalidCommand, match="needs a reason"):
        deployed.cases.return_task(handle.id, " ", actor="u", role="responsible_unit", clock=clock)
    for unit in ("A", "B", "C"):
        walk.give_back()
        walk.do("dispatch", unit=unit, handling_days=3)
    with pytest.raises(InvalidCommand, match="already returned 3 times"):
        walk.give_back()
    assert walk.view.status == "dispatched"


def test_tasks_are_listed_by_role_unit_grid_and_level(deployed, clock):
    a = Walk(deployed, clock).dispatched(unit="路灯所")
    b = Walk(deployed, clock, data={**MATTER, "grid_code": "410702001002U001"})
    q = deployed.queries
    assert [t.case_id for t in q.tasks(role="responsible_unit", unit="路灯所")] == [a.id]
    assert [t.case_id for t in q.tasks(grid_code="410702001002U001")] == [b.id]
    assert q.tasks(role="grid_agency", agency_level="community") == []
    b.do("verify_register", verified=True, within_authority=False)
    assert [t.case_id for t in q.tasks(role="grid_agency", agency_level="community")] == [b.id]


def test_unit_feedback_message_interrupts_handling(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    deployed.cases.send_message(walk.id, "unit_feedback", {"result": "外部系统办结"}, actor="unit-system",
                                role="platform", clock=clock)
    assert walk.view.status == "verifying" and walk.open == ["check_result"]
    assert walk.view.data["feedback"] == {"result": "外部系统办结"}
    states = {t.element_id: t.state for t in deployed.queries.tasks(case_id=walk.id, open_only=False)}
    assert states["handle"] == "cancelled"


def test_a_message_nothing_waits_for_is_refused_clearly(deployed, clock):
    walk = Walk(deployed, clock)
    with pytest.raises(InvalidCommand, match="not waiting for message 'resident_follow_up'"):
        deployed.cases.send_message(walk.id, "resident_follow_up", {}, actor="p", role="platform", clock=clock)


def test_handling_deadline_fires_by_the_injected_clock_and_not_a_second_before(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3)
    due = working_days_after(deployed, clock.now(), 3)
    clock.set(due)
    events = len(deployed.queries.history(walk.id))
    assert deployed.cases.check_timers(walk.id, clock=clock) is False
    assert "explain_overdue" not in walk.open and walk.view.status == "dispatched"
    assert len(deployed.queries.history(walk.id)) == events
    clock.set(due + timedelta(seconds=1))
    assert deployed.cases.check_timers(walk.id, clock=clock) is True
    assert walk.view.status == "overdue"
    fired = deployed.queries.history(walk.id)[-1]
    assert (fired.command, fired.actor, fired.clock_time) == ("timers", "timer-service", clock.now())
    explain = walk.task("explain_overdue")
    assert (explain.role, explain.unit, explain.agency_level) == ("responsible_unit", "路灯所", "community")
    assert "handle" in walk.open  # the unit can still report back, late
    walk.do("explain_overdue", explanation="材料采购延误").do("review_explanation", accepted=True)
    walk.sign().do("handle", result="已修复")
    assert walk.view.status == "verifying"


def test_a_late_report_is_late_even_without_a_timer_sweep(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3)
    walk.sign()
    clock.advance(days=4)
    walk.do("handle", result="迟到的反馈")
    assert walk.statuses()[-4:] == ["in_progress", "overdue", "feedback_submitted", "verifying"]
    assert sorted(walk.open) == ["check_result", "explain_overdue"]


def test_a_running_case_stays_on_its_version(deployed, clock):
    old = Walk(deployed, clock)
    changed = grid_matter_upload()["grid_matter.bpmn"].replace("核查 Check the result".encode(), "核查 v2".encode())
    assert changed != grid_matter_upload()["grid_matter.bpmn"]
    assert deployed.definitions.deploy({"grid_matter.bpmn": changed}, "admin", clock)[0].version == 2
    new = Walk(deployed, clock)
    pinned = Walk(deployed, clock, version=1)
    assert (old.view.definition_version, new.view.definition_version, pinned.view.definition_version) == (1, 2, 1)
    for walk, name in ((old, "核查 Check the result"), (new, "核查 v2")):
        walk.dispatched().sign().do("handle", result="ok")
        assert walk.task("check_result").name == name


def test_unknown_process_case_and_task_are_not_found(deployed, clock):
    with pytest.raises(NotFound, match="no definition 'nope'"):
        deployed.cases.start("nope", {}, actor="a", role="grid_worker", clock=clock)
    with pytest.raises(NotFound):
        deployed.queries.case(999)
    with pytest.raises(NotFound):
        deployed.cases.complete_task(999, {}, actor="a", role="grid_worker", clock=clock)


def test_a_failing_engine_step_leaves_the_case_as_it_was(engine, clock):
    """A command that fails mid-way (here: a runtime expression error after the task ran) applies nothing."""
    xml = grid_matter_upload()["grid_matter.bpmn"].replace(
        b"dispatch_round = dispatch_round + 1", b"dispatch_round = dispatch_round + 1 / 0")
    registered(engine, clock)
    engine.definitions.deploy({"grid_matter.bpmn": xml}, "admin", clock)
    walk = Walk(engine, clock)
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    with engine.sessions() as s:
        before = s.get(Case, walk.id)
        before_state, before_seq = before.state, before.last_seq
    task = walk.task("dispatch")
    with pytest.raises(InvalidCommand, match="division by zero|zero"):
        engine.cases.complete_task(task.id, {"unit": "U", "handling_days": 3}, actor="a", role="grid_agency",
                                   clock=clock)
    with engine.sessions() as s:
        after = s.get(Case, walk.id)
        assert (after.state, after.last_seq) == (before_state, before_seq)
        assert s.query(HistoryEvent).filter_by(case_id=walk.id).count() == before_seq
    assert walk.task("dispatch").state == "offered"


def test_an_unlawful_move_at_run_time_is_refused_and_applies_nothing(engine, clock):
    """Deploy checks paths without evaluating conditions; a wrongly drawn condition is caught when it runs."""
    xml = grid_matter_upload()["grid_matter.bpmn"].decode()
    assert xml.count('tFormalExpression">returned</bpmn:conditionExpression>') == 1
    xml = xml.replace('tFormalExpression">returned</bpmn:conditionExpression>',
                      'tFormalExpression">not returned</bpmn:conditionExpression>')
    registered(engine, clock)
    engine.definitions.deploy({"grid_matter.bpmn": xml.encode()}, "admin", clock)
    walk = Walk(engine, clock).dispatched().sign().do("handle", result="done")  # wrongly routed back
    task = walk.task("dispatch")
    with pytest.raises(InvalidCommand, match="unlawful status move in_progress → dispatched"):
        engine.cases.complete_task(task.id, {"unit": "U2", "handling_days": 2}, actor="a", role="grid_agency",
                                   clock=clock)
    assert walk.view.status == "in_progress" and walk.task("dispatch").state == "offered"


def test_only_dispatched_tasks_can_be_returned(deployed, clock):
    walk = Walk(deployed, clock)
    task = walk.task("verify_register")
    with pytest.raises(InvalidCommand, match="cannot be returned"):
        deployed.cases.return_task(task.id, "not mine", actor="w", role="grid_worker", clock=clock)


def test_each_command_reads_its_own_clock_even_across_threads(deployed):
    """Two commands at once in two threads, each on its own clock: each timer is due by its own time."""
    import threading

    from engine.clock import FixedClock
    from tests.conftest import T0

    clocks = [FixedClock(T0), FixedClock(T0 + timedelta(days=30))]
    walks, errors = [None, None], []

    def run(i):
        try:
            walks[i] = Walk(deployed, clocks[i]).dispatched(days=2)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for walk, clock in zip(walks, clocks):
        due = [w.due_at for w in walk.view.waiting if w.kind == "timer"]
        assert due == [working_days_after(deployed, clock.now(), 2)]


def test_timestamps_are_utc_on_both_databases(deployed):
    from datetime import datetime, timezone

    from engine.clock import FixedClock

    beijing = timezone(timedelta(hours=8))
    clock = FixedClock(datetime(2026, 11, 2, 9, 0, tzinfo=beijing))
    walk = Walk(deployed, clock)
    view = walk.view
    assert view.created_at == datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
    assert view.created_at.utcoffset() == timedelta(0)
    with deployed.sessions() as s:
        import sqlalchemy as sa
        found = s.scalars(sa.select(Case.id).where(Case.created_at < datetime(2026, 11, 2, 1, 30,
                                                                             tzinfo=timezone.utc))).all()
    assert walk.id in found


def test_a_negative_list_matter_is_refused_at_intake_citing_the_article(deployed, clock):
    with pytest.raises(InvalidCommand, match="第十四条"):
        deployed.cases.start("grid_matter", {**MATTER, "sub_category": "administrative_penalty_decision"},
                             actor="w", role="grid_worker", clock=clock)
    with pytest.raises(InvalidCommand, match="not in the admission catalog"):
        deployed.cases.start("grid_matter", {**MATTER, "sub_category": "no_such_kind"}, actor="w",
                             role="grid_worker", clock=clock)
    assert deployed.queries.cases() == []
    assert Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting"}).view.status == "reported"


def test_dispatch_without_a_unit_routes_by_kind_level_and_area(deployed, clock):
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting"})
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    walk.do("dispatch", handling_days=2)
    handle = walk.task("handle")
    assert handle.unit == "hq_anju_wuye"  # the community's own rule beats the county-wide one
    assert walk.view.data["assisting_units"] == ["hq_power"]
    assert deployed.queries.history(walk.id)[-1].effects["routing"] == "2026.1"


def test_the_agency_may_name_the_unit_itself(deployed, clock):
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting"}).dispatched(unit="自选单位")
    assert walk.task("handle").unit == "自选单位"


def test_a_matter_that_cannot_be_routed_says_why(deployed, clock):
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "rental_housing"})   # admissible, not routed
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    task = walk.task("dispatch")
    with pytest.raises(InvalidCommand, match="no unit to route to"):
        deployed.cases.complete_task(task.id, {"handling_days": 2}, actor="a", role="grid_agency", clock=clock)
