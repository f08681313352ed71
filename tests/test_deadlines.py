"""Deadlines that enforce themselves: working-day limits, extension (延期), overdue tasks, written
explanations (书面说明) and their review, reminders (催办), supervision (督办), warnings (预警)."""
from datetime import datetime, timedelta, timezone

import pytest

from engine.clock import FixedClock
from engine.errors import InvalidCommand
from tests.test_cases import MATTER, Walk

CST = timezone(timedelta(hours=8))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def _due(engine, case_id):
    [timer] = [t for t in engine.timers.pending(case_id) if t.element_id == "handling_deadline"]
    return timer.due_at


def test_handling_limit_counts_working_days_across_the_national_day(deployed):
    clock = FixedClock(at("2026-09-30T09:00"))
    walk = Walk(deployed, clock).dispatched(days=3)
    assert _due(deployed, walk.id) == at("2026-10-10T17:30")  # a makeup Saturday
    event = deployed.queries.history(walk.id)[-1]
    assert event.effects["calendar"] == deployed.calendars.current()[0]


def test_a_deadline_in_a_year_the_calendar_does_not_know_fails_clearly_until_it_is_added(deployed):
    clock = FixedClock(at("2026-12-29T10:00"))
    walk = Walk(deployed, clock)
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    task = walk.task("dispatch")
    with pytest.raises(InvalidCommand, match="2027"):
        deployed.cases.complete_task(task.id, {"unit": "U", "handling_days": 5}, actor="a", role="grid_agency",
                                     clock=clock)
    assert walk.view.status == "escalated"
    deployed.calendars.add_year(2027, holidays=["2027-01-01"], makeup_workdays=[], by="admin")
    walk.do("dispatch", unit="U", handling_days=5)
    assert _due(deployed, walk.id) == at("2027-01-06T17:30")  # 12-30, 12-31, 01-04, 01-05, 01-06


def test_an_approved_extension_moves_the_deadline_by_working_days(deployed):
    clock = FixedClock(at("2026-09-28T09:00"))
    walk = Walk(deployed, clock).dispatched(days=2).sign()
    before = _due(deployed, walk.id)
    assert before == at("2026-09-30T17:30")
    handle = walk.task("handle")
    deployed.cases.request_extension(handle.id, 2, "需采购配件", actor="u", role="responsible_unit", clock=clock)
    assert walk.task("handle").state == "extension_requested"
    with pytest.raises(InvalidCommand, match="for the grid_agency role"):
        deployed.cases.decide_extension(handle.id, True, actor="u", role="responsible_unit", clock=clock)
    deployed.cases.decide_extension(handle.id, True, actor="agency", role="grid_agency", clock=clock)
    assert _due(deployed, walk.id) == at("2026-10-09T17:30")  # 2 working days after 09-30: 10-08, 10-09
    assert walk.task("handle").state == "in_progress"
    moved = deployed.queries.history(walk.id)[-1].effects["timers"]
    assert moved == [["handling_deadline", at("2026-10-09T17:30").astimezone(timezone.utc).isoformat(), "moved"]]
    # The timer fires at the new time, not the old one.
    clock.set(before + timedelta(hours=1))
    assert deployed.timers.sweep(clock).fired_cases == 0
    clock.set(at("2026-10-09T17:31"))
    assert deployed.timers.sweep(clock).fired_cases == 1
    assert walk.task("handle").state == "overdue"


def test_a_refused_extension_leaves_the_deadline(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3).sign()
    before = _due(deployed, walk.id)
    handle = walk.task("handle")
    deployed.cases.request_extension(handle.id, 3, "人手不足", actor="u", role="responsible_unit", clock=clock)
    deployed.cases.decide_extension(handle.id, False, actor="agency", role="grid_agency", clock=clock,
                                    comment="请按期办结")
    assert _due(deployed, walk.id) == before and walk.task("handle").state == "in_progress"


def test_an_extension_after_the_deadline_or_without_reason_is_refused(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=1).sign()
    handle = walk.task("handle")
    with pytest.raises(InvalidCommand, match="needs a reason"):
        deployed.cases.request_extension(handle.id, 1, " ", actor="u", role="responsible_unit", clock=clock)
    with pytest.raises(InvalidCommand, match="1 to 10 working days"):
        deployed.cases.request_extension(handle.id, 11, "x", actor="u", role="responsible_unit", clock=clock)
    clock.set(_due(deployed, walk.id) + timedelta(minutes=1))
    with pytest.raises(InvalidCommand, match="explain in writing"):
        deployed.cases.request_extension(handle.id, 1, "迟了", actor="u", role="responsible_unit", clock=clock)


def test_overdue_unit_owes_an_explanation_and_may_still_report_late(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=1).sign()
    clock.set(_due(deployed, walk.id) + timedelta(minutes=1))
    deployed.timers.sweep(clock)
    assert walk.task("handle").state == "overdue"
    explain = walk.task("explain_overdue")
    assert explain.state == "explanation_required" and explain.agency_level == "community"
    walk.do("explain_overdue", explanation="暴雨停工两日")
    states = {t.element_id: t.state for t in deployed.queries.tasks(case_id=walk.id, open_only=False)}
    assert states["explain_overdue"] == "explanation_submitted"
    walk.do("handle", result="已修复（逾期）")
    assert walk.view.status == "verifying"
    assert {t.element_id: t.state for t in deployed.queries.tasks(case_id=walk.id, open_only=False)}["handle"] == \
        "completed"


def test_review_accepts_and_suspends_or_rejects_to_supervision(deployed, clock):
    suspended = Walk(deployed, clock).dispatched(days=1)
    rejected = Walk(deployed, clock).dispatched(days=1)
    clock.set(_due(deployed, rejected.id) + timedelta(minutes=1))
    deployed.timers.sweep(clock)
    for walk in (suspended, rejected):
        walk.do("explain_overdue", explanation="需列入明年预算")
    suspended.do("review_explanation", accepted=True, suspend=True)
    assert suspended.view.status == "suspended"
    rejected.do("review_explanation", accepted=False, comment="理由不成立")
    supervise = rejected.task("supervise_overdue")
    assert supervise.agency_level == "township"
    states = {t.element_id: t.state for t in deployed.queries.tasks(case_id=rejected.id, open_only=False)}
    assert states["explain_overdue"] == "explanation_rejected"
    states = {t.element_id: t.state for t in deployed.queries.tasks(case_id=suspended.id, open_only=False)}
    assert states["explain_overdue"] == "explanation_accepted"
    # A suspended matter is still tracked: the unit's later report takes it on.
    suspended.do("handle", result="预算到位后完成")
    assert suspended.view.status == "verifying"


def test_reminders_before_the_deadline_only(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=2)
    handle = walk.task("handle")
    deployed.cases.remind(handle.id, "请尽快签收", actor="社区", role="grid_agency", clock=clock)
    assert deployed.queries.history(walk.id)[-1].command == "remind"
    with pytest.raises(InvalidCommand, match="grid_agency role"):
        deployed.cases.remind(handle.id, "x", actor="w", role="grid_worker", clock=clock)
    clock.set(_due(deployed, walk.id) + timedelta(seconds=1))
    with pytest.raises(InvalidCommand, match="supervise"):
        deployed.cases.remind(handle.id, "晚了", actor="社区", role="grid_agency", clock=clock)


def test_supervision_only_by_a_higher_level_and_only_upwards(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    with pytest.raises(InvalidCommand, match="only a higher level"):
        deployed.cases.supervise(walk.id, "yellow", "community", actor="社区", role="grid_agency", clock=clock)
    deployed.cases.supervise(walk.id, "yellow", "township", "黄牌督办", actor="街道", role="grid_agency", clock=clock)
    with pytest.raises(InvalidCommand, match="only goes up"):
        deployed.cases.supervise(walk.id, "normal", "county", actor="区", role="grid_agency", clock=clock)
    deployed.cases.supervise(walk.id, "red", "county", actor="区", role="grid_agency", clock=clock)
    with deployed.readers() as s:
        from engine.store.models import Case
        assert s.get(Case, walk.id).supervision == "red"
    assert [e.command for e in deployed.queries.history(walk.id)][-2:] == ["supervise", "supervise"]


def test_warnings_turn_yellow_at_seventy_percent_and_red_when_overdue(deployed):
    clock = FixedClock(at("2026-11-02T09:00"))  # Monday
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting"}).dispatched(days=3).sign()
    started = clock.now()
    due = _due(deployed, walk.id)  # Thursday 17:30
    board = deployed.deadlines
    [s] = board.standing(started + timedelta(hours=1))
    assert (s.warning, s.due_at, s.started_at) == ("green", due, started)
    yellow_at = started + (due - started) * 0.7
    assert board.standing(yellow_at - timedelta(minutes=1))[0].warning == "green"
    assert board.standing(yellow_at + timedelta(minutes=1))[0].warning == "yellow"
    assert board.standing(yellow_at + timedelta(minutes=1), yellow_share=0.9)[0].warning == "green"
    clock.set(due + timedelta(minutes=1))
    deployed.timers.sweep(clock)
    assert [s.warning for s in board.standing(clock.now())] == ["red"]


def test_a_task_not_signed_for_in_time_is_flagged(deployed):
    clock = FixedClock(at("2026-11-02T09:00"))
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting"}).dispatched(days=3)
    dispatched = clock.now()
    board = deployed.deadlines
    assert not board.standing(dispatched + timedelta(hours=1))[0].sign_for_overdue
    assert board.standing(dispatched + timedelta(hours=3))[0].sign_for_overdue  # limit: 2 working hours
    walk.sign()
    assert not board.standing(dispatched + timedelta(hours=3))[0].sign_for_overdue


def test_the_return_window_closes(deployed):
    clock = FixedClock(at("2026-11-02T09:00"))
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting"}).dispatched(days=5)
    clock.set(at("2026-11-05T09:00"))  # 2 working days after Monday close on Wednesday 17:30
    with pytest.raises(InvalidCommand, match="return window"):
        walk.give_back("不是我们的")


def test_without_handling_days_the_time_limit_table_sets_the_deadline(deployed):
    clock = FixedClock(at("2026-11-02T09:00"))
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "road_lighting", "urgency": "urgent"})
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    walk.do("dispatch", unit="路灯所")
    # Dispatched Monday 09:30; road_lighting/urgent is 8 working hours: 2.5 h + 4 h on Monday, 1.5 h Tuesday.
    assert clock.now() == at("2026-11-02T09:30")
    assert _due(deployed, walk.id) == at("2026-11-03T10:30")
    assert deployed.queries.history(walk.id)[-1].effects["time_limits"] == "2026.1"


def test_a_kind_of_matter_the_table_does_not_know_needs_explicit_days(deployed, clock):
    walk = Walk(deployed, clock, data={**MATTER, "sub_category": "rental_housing"})   # admissible, no time limit
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    task = walk.task("dispatch")
    with pytest.raises(InvalidCommand, match="sub-categor"):
        deployed.cases.complete_task(task.id, {"unit": "U"}, actor="a", role="grid_agency", clock=clock)
    walk.do("dispatch", unit="U", handling_days=2)
    assert walk.view.status == "dispatched"
