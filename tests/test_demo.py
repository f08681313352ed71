"""`gridflow demo` on the sample registry (红旗区), on SQLite and PostgreSQL: what it leaves behind."""
from __future__ import annotations

from datetime import date

import pytest

from api.cli import demo
from engine.execution.functions import routing
from engine.cases.history import verify_chain
from tests.conftest import PROCESSES

# The five matters of the demo and where each must end.
FINAL_STATUS = {
    "楼道堆放杂物堵塞消防通道": "self_resolved",     # handled by the worker the same day
    "小区主干道路灯连续损坏": "evaluated",           # dispatched, closed, follow-up visit done
    "临街餐馆油烟直排扰民": "closed",                # returned once, re-dispatched, reworked, closed
    "小区供水管道漏水": "closed",                    # overdue, explained in writing, closed
    "反映小区有人违章搭建": "not_filed",             # did not check out
    "工地拖欠农民工工资": "not_filed",               # off the county's list: the worker refused it (§13)
    "小区主干道井盖缺失": "closed",                  # joint handling: a lead and an assisting unit
    "小区主干道井盖缺失（市民热线重复反映）": "closed",  # its duplicate, closed with it
}


@pytest.fixture
def ran(engine):
    lines: list[str] = []
    demo.run_demo(engine, PROCESSES, lines.append)
    return engine, {c.title: c for c in engine.queries.cases() if c.process_key == "grid_matter"}, "\n".join(lines)


def _handling_units(engine, case_id) -> list[str]:
    return [t.unit for t in engine.queries.tasks(case_id=case_id, open_only=False) if t.element_id == "handle"]


def test_each_matter_ends_in_its_status(ran):
    engine, cases, out = ran
    assert {title: case.status for title, case in cases.items()} == FINAL_STATUS
    assert "registry: sample county 红旗区 — 47 grids" in out
    assert all(c.grid_code == demo.GRID for c in cases.values())


def test_the_demo_grid_and_its_people_come_from_the_sample_registry(ran):
    engine, cases, _ = ran
    grid = engine.registry.grid(demo.GRID, date(2026, 11, 2))
    assert grid.name == "东风社区第一网格" and grid.grid_type == "U"
    full_time = [w.name for w in engine.registry.workers(demo.GRID) if w.employment == "full_time"]
    actors = {e.actor for c in cases.values() for e in engine.queries.history(c.id)}
    # The reporting worker is the grid's registered full-time worker; the agencies are the divisions above it.
    assert f"{full_time[0]} (网格员)" in actors
    assert {"东风社区网格站", "东风街道网格中心"} <= actors
    units = {u.code: u.name for u in engine.registry.units()}
    assert units["hq_ludeng"] in actors and units["hq_water"] in actors


def test_dispatches_without_a_named_unit_follow_the_routing_table(ran):
    engine, cases, _ = ran
    table = routing()
    for title, sub_category, level in (("小区主干道路灯连续损坏", "road_lighting", "township"),
                                       ("小区供水管道漏水", "water_supply_outage", "community")):
        case = cases[title]
        route = table.route(sub_category, level, demo.GRID)
        assert case.level == level
        assert _handling_units(engine, case.id) == [route.lead_unit]
        assert case.unit == route.lead_unit
        assert case.data["assisting_units"] == list(route.assisting_units)
    # The street's rule for road lighting, not the community's own (which would name the property company).
    assert _handling_units(engine, cases["小区主干道路灯连续损坏"].id) == ["hq_ludeng"]
    # Units the agency named itself: the first returned the task, the second handled it.
    assert _handling_units(engine, cases["临街餐馆油烟直排扰民"].id) == ["hq_chengguan", "hq_zhifa_001"]
    # Matters that never reached dispatch have no unit.
    for title in ("楼道堆放杂物堵塞消防通道", "反映小区有人违章搭建"):
        assert _handling_units(engine, cases[title].id) == [] and cases[title].unit is None


def test_every_history_chain_verifies_and_tells_the_story(ran):
    engine, cases, _ = ran
    for case in cases.values():
        events = engine.queries.history(case.id)
        assert events and verify_chain(case.id, events) is None
        assert events[-1].status_after == case.status
    water = engine.queries.history(cases["小区供水管道漏水"].id)
    assert [e.status_after for e in water if e.actor == "timer-service"] == ["overdue"]
    fumes = [e.status_after for e in engine.queries.history(cases["临街餐馆油烟直排扰民"].id)]
    assert "returned" in fumes and "rework" in fumes


def test_the_county_list_is_filed_first_and_off_list_work_is_refused(ran):
    engine, cases, out = ran
    (list_case,) = [c for c in engine.queries.cases() if c.process_key == "matter_list_change"]
    assert list_case.status == "filed"
    assert engine.matter_lists.in_force("410702", date(2026, 11, 2)).version == "2026.1"
    assert "refused: cannot assign verify_register to a grid worker" in out
    refusal = engine.queries.history(cases["工地拖欠农民工工资"].id)[-1]
    assert refusal.command == "refuse" and "第十三条" in refusal.effects["refusal"]


def test_the_joint_case_has_an_assisting_unit_and_a_duplicate(ran):
    engine, cases, out = ran
    lead, duplicate = cases["小区主干道井盖缺失"], cases["小区主干道井盖缺失（市民热线重复反映）"]
    tasks = engine.queries.tasks(case_id=lead.id, open_only=False)
    assert [(t.unit, t.state) for t in tasks if t.element_id == "assist"] == [("hq_water", "completed")]
    assert engine.queries.case(duplicate.id).duplicate_of == lead.id
    assert "linked as a duplicate" in out
