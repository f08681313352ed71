"""`gridflow demo`: realistic grid matters run through the deployed grid-matter process.

Runs on an engine clock that moves forward as people act, so the timelines read like a working week.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from engine.clock import FixedClock
from engine.errors import EngineError
from engine.service import Engine

import click

from api.cli import render
from api.cli.common import PROJECT_PROCESSES, engine_of, reports_errors

START = datetime(2026, 11, 2, 9, 0, tzinfo=render.BEIJING)  # a Monday morning
OFFICE_HOURS = (9, 18)

# A grid of the sample registry (the fictional county 410702 红旗区 shipped in engine/registry/sample_registry).
GRID = "410702001001U001"
SAMPLE_LIST = Path(__file__).resolve().parents[2] / "engine" / "registry" / "sample_registry" / "matter_list_410702.csv"
AGENCY_SUFFIX = {"community": "网格站", "township": "网格中心", "county": "网格化服务管理中心"}


class Cast:
    """Who acts in the demo, read from the registry: the grid's full-time worker, the agencies above
    the grid, the units by their registered names."""

    def __init__(self, engine: Engine, grid: str):
        registry = engine.registry
        self.worker = next(w.name for w in registry.workers(grid) if w.employment == "full_time") + " (网格员)"
        self.agencies = {level: registry.division_name(registry.agency_for(grid, level)) + suffix
                         for level, suffix in AGENCY_SUFFIX.items()}
        self.units = {u.code: u.name for u in registry.units()}


def _after(clock: FixedClock, hours: float) -> None:
    """Move the clock on by `hours` of office time, so that people act on weekdays between 9 and 18."""
    remaining = timedelta(hours=hours)
    while remaining > timedelta(0):
        now = clock.now().astimezone(render.BEIJING)
        close = now.replace(hour=OFFICE_HOURS[1], minute=0, second=0, microsecond=0)
        if now.weekday() >= 5 or now >= close or now.hour < OFFICE_HOURS[0]:
            next_day = now if now.hour < OFFICE_HOURS[0] and now.weekday() < 5 else now + timedelta(days=1)
            opening = next_day.replace(hour=OFFICE_HOURS[0], minute=0, second=0, microsecond=0)
            while opening.weekday() >= 5:
                opening += timedelta(days=1)
            clock.set(opening)
            continue
        step = min(remaining, close - now)
        clock.set(now + step)
        remaining -= step


class Matter:
    """One matter walked through the process by the people who handle it."""

    def __init__(self, engine: Engine, clock: FixedClock, cast: Cast, data: dict):
        self.engine, self.clock, self.cast = engine, clock, cast
        self.id = engine.cases.start("grid_matter", data, actor=cast.worker, role="grid_worker", clock=clock)

    def _task(self, element: str):
        for task in self.engine.queries.tasks(case_id=self.id):
            if task.element_id == element:
                return task
        raise RuntimeError(f"case {self.id} has no open {element} task")  # a broken demo, not user input

    def _actor(self, task) -> str:
        if task.role == "grid_agency":
            return self.cast.agencies.get(task.agency_level or "", "网格机构")
        if task.role == "responsible_unit":
            return self.cast.units.get(task.unit, task.unit or "责任单位")
        return self.cast.worker

    def do(self, element: str, hours: float = 1, **data) -> "Matter":
        _after(self.clock, hours)
        task = self._task(element)
        self.engine.cases.complete_task(task.id, data, actor=self._actor(task), role=task.role, clock=self.clock)
        return self

    def sign(self, hours: float = 1, element: str = "handle") -> "Matter":
        _after(self.clock, hours)
        task = self._task(element)
        self.engine.cases.sign_for(task.id, actor=self._actor(task), role=task.role, clock=self.clock)
        return self

    def give_back(self, reason: str, hours: float = 1) -> "Matter":
        _after(self.clock, hours)
        task = self._task("handle")
        self.engine.cases.return_task(task.id, reason, actor=self._actor(task), role=task.role, clock=self.clock)
        return self

    def message(self, name: str, hours: float = 1, **payload) -> "Matter":
        _after(self.clock, hours)
        self.engine.cases.send_message(self.id, name, payload, actor="市民回访系统", role="platform",
                                       clock=self.clock)
        return self


def run_demo(engine: Engine, folder: Path, echo) -> None:
    uploads = {p.name: p.read_bytes() for p in sorted(folder.glob("*.bpmn")) + sorted(folder.glob("*.dmn"))}
    clock = FixedClock(START)
    echo(f"database: {engine.url}")
    engine.registry.load_sample(by="demo-admin")
    echo(f"registry: sample county 红旗区 — {engine.registry.count('grids')} grids, "
         f"{engine.registry.count('workers')} workers, {len(engine.registry.units())} units")
    cast = Cast(engine, GRID)
    for outcome in engine.definitions.deploy(uploads, "demo-admin", clock):
        echo(f"deploy  {outcome}")
    list_case = file_sample_list(engine, "demo-admin", clock)
    in_force = engine.matter_lists.in_force("410702", clock.now())
    echo(f"matter list: 红旗区 version {in_force.version} filed through case {list_case} (applied → reviewed → "
         f"approved → filed), {len(in_force.sub_categories)} matters + {len(in_force.temporary)} temporary")

    cases = []
    echo("\n1. Self-handled: a grid worker clears a blocked fire escape the same day")
    m = Matter(engine, clock, cast, {"title": "楼道堆放杂物堵塞消防通道", "grid_code": GRID, "category": "安全隐患排查",
                               "sub_category": "fire_hazard",
                               "reporter": {"name": "李秀英", "phone": "13800000001"}})
    m.do("verify_register", verified=True, within_authority=True)
    m.do("self_handle", hours=3, resolved=True, result="已督促住户清理杂物，通道恢复畅通")
    cases.append(m)

    echo("2. Escalated to the street, dispatched, signed for, handled, checked, closed, follow-up")
    m = Matter(engine, clock, cast, {"title": "小区主干道路灯连续损坏", "grid_code": GRID, "category": "民生事项服务",
                                     "sub_category": "road_lighting"})
    m.do("verify_register", verified=True, within_authority=False)
    m.do("accept_report", decision="escalate")
    m.do("accept_report", hours=2, decision="file")
    m.do("dispatch", handling_days=3)  # no unit named: routed by kind, level and area
    m.sign(hours=2)
    m.do("handle", hours=14, result="更换灯具 6 套，线路检修完毕", final=True)
    m.do("check_result", hours=4, passed=True, comment="现场核查路灯全部正常")
    m.do("close_case", summary="按期办结")
    m.message("resident_follow_up", hours=6, satisfied=True, comment="满意")
    cases.append(m)

    echo("3. Returned by the first unit (退单) and re-dispatched to the responsible one")
    m = Matter(engine, clock, cast, {"title": "临街餐馆油烟直排扰民", "grid_code": GRID, "category": "矛盾纠纷排查化解",
                                     "sub_category": "environmental_sanitation"})
    m.do("verify_register", verified=True, within_authority=False)
    m.do("accept_report", decision="file")
    m.do("dispatch", unit="hq_chengguan", handling_days=3)
    m.give_back("油烟排放属生态环境部门职责，非本所管辖", hours=3)
    m.do("dispatch", unit="hq_zhifa_001", handling_days=5)
    m.sign()
    m.do("handle", hours=30, result="责令安装油烟净化设施并已验收")
    m.do("check_result", hours=5, passed=False, comment="夜间仍有油烟外溢")
    m.do("redo", hours=20, result="增设排烟管道引至楼顶")
    m.do("check_result", hours=3, passed=True)
    m.do("close_case", summary="经返工后办结")
    cases.append(m)

    echo("4. Overdue: the unit misses its deadline; the timer service asks it to explain in writing")
    m = Matter(engine, clock, cast, {"title": "小区供水管道漏水", "grid_code": GRID, "category": "民生事项服务",
                               "sub_category": "water_supply_outage", "urgency": "urgent"})
    m.do("verify_register", verified=True, within_authority=False)
    m.do("accept_report", decision="file")
    m.do("dispatch", handling_days=1)
    m.sign()
    _after(clock, 12)
    result = engine.timers.sweep(clock, worker="timer-service")
    echo(f"   timer service: fired the deadlines of {result.fired_cases} case(s)")
    m.do("explain_overdue", explanation="更换主管道需停水审批，审批流程两个工作日")
    m.do("review_explanation", accepted=True, comment="理由成立，继续办理")
    m.do("handle", hours=3, result="主管道更换完成，恢复供水")
    m.do("check_result", passed=True)
    m.do("close_case", summary="逾期办结，已书面说明")
    cases.append(m)

    echo("5. Not admissible: a report that does not check out is not filed, with its reason")
    m = Matter(engine, clock, cast, {"title": "反映小区有人违章搭建", "grid_code": GRID, "category": "安全隐患排查"})
    m.do("verify_register", verified=False, within_authority=False, reason="现场核实为合法审批的临时设施")
    cases.append(m)

    echo("6. Off the county's matter list (条例第十三条): the platform may not assign it; the worker refuses it")
    off_list = {"title": "工地拖欠农民工工资", "grid_code": GRID, "category": "矛盾纠纷排查化解",
                "sub_category": "wage_arrears"}
    try:
        engine.cases.start("grid_matter", off_list, actor="12345热线", role="platform", clock=clock)
    except EngineError as refused:
        echo(f"   refused: {str(refused)[:90]}…")
    m = Matter(engine, clock, cast, off_list)
    _after(clock, 1)
    task = m._task("verify_register")
    engine.cases.refuse_task(task.id, "欠薪不在本区网格事项清单内，已告知当事人向人社部门投诉", actor=cast.worker,
                             role="grid_worker", clock=clock)
    cases.append(m)

    echo("7. Joint handling (主办/协办): the lead and an assisting unit; a second report is linked as a duplicate")
    m = Matter(engine, clock, cast, {"title": "小区主干道井盖缺失", "grid_code": GRID, "category": "安全隐患排查",
                                     "sub_category": "manhole_cover_missing"})
    _after(clock, 1)
    again = engine.cases.start("grid_matter", {"title": "小区主干道井盖缺失（市民热线重复反映）", "grid_code": GRID,
                                               "category": "安全隐患排查", "sub_category": "manhole_cover_missing"},
                               actor="12345热线", role="platform", clock=clock)
    suggested = [c.id for c in engine.queries.duplicate_candidates(again)]
    engine.cases.link_duplicate(again, suggested[0], "同一井盖，热线重复反映", actor="12345热线", role="platform",
                                clock=clock)
    echo(f"   case {again} linked as a duplicate (重复件) of case {suggested[0]}")
    m.do("verify_register", verified=True, within_authority=False)
    m.do("accept_report", decision="file")
    m.do("dispatch", unit="hq_chengguan", assisting_units=["hq_water"], handling_days=2)
    m.sign(element="assist")
    m.do("assist", hours=4, result="已排查井下供水管线，无渗漏", final=True)
    m.sign()
    m.do("handle", hours=2, result="已设置围挡警示，待井盖到货", final=False)
    m.do("handle", hours=20, result="更换球墨铸铁井盖，供水站协办排查管线", final=True)
    m.do("check_result", hours=2, passed=True, comment="现场核查井盖已复位")
    m.do("close_case", summary="主办协办按期办结")
    cases.append(m)

    for m in cases:
        echo("")
        echo(render.case(engine.queries.case(m.id)))
        echo(render.timeline(engine.queries.history(m.id)))


def file_sample_list(engine, who: str, clock=None) -> int:
    """Deploy the list-change process if needed and run the sample list through application, review and
    agreement (`gridflow lists sample`, and the demo first of all)."""
    from engine.clock import SYSTEM_CLOCK
    clock = clock or SYSTEM_CLOCK
    engine.definitions.deploy({"matter_list_change.bpmn": (PROJECT_PROCESSES / "matter_list_change.bpmn")
                               .read_bytes()}, who, clock)
    filed = [r for r in engine.matter_lists.records("410702") if r["version"] == "2026.1"]
    if filed:   # filed before (the demo run again): a list version is filed once
        return filed[0]["case_id"]
    change = engine.matter_lists.change_from_file("410702", SAMPLE_LIST.name, SAMPLE_LIST.read_bytes())
    start = clock.now().astimezone(timezone.utc).date()
    data = {"county_code": "410702", "version": "2026.1", "effective_from": "2026-01-01",
            "reason": "红旗区网格事项清单（初次制定，条例第十三条）", "applicant": "hq_grid_center", **change}
    if start < date(2026, 1, 1):
        data["effective_from"] = start.isoformat()
    case_id = engine.cases.start("matter_list_change", data, actor=who, role="responsible_unit", clock=clock)
    for role, answer in (("grid_agency", {"accepted": True, "opinion": "符合准入目录"}),
                         ("county_government", {"approved": True, "opinion": "同意"})):
        (task,) = engine.queries.case(case_id).open_tasks
        engine.cases.complete_task(task.id, answer, actor=who, role=role, clock=clock)
    return case_id


@click.command()
@click.option("--processes", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of definitions to deploy (default: the project's processes/).")
@click.pass_context
@reports_errors
def demo(ctx, processes):
    """Deploy the definitions and run realistic grid matters through their lifecycle."""
    folder = processes or PROJECT_PROCESSES
    if not folder.is_dir():
        raise click.UsageError(f"no processes folder at {folder}; pass --processes")
    run_demo(engine_of(ctx), folder, click.echo)
