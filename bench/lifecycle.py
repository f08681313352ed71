"""Lifecycle benchmark: GridFlow's engine against bare SpiffWorkflow doing the same steps.

    python bench/lifecycle.py [--cases N] [--db URL]

Each case walks the grid matter from report to resident follow-up (9 commands). The bare side is what a
naive persisted engine would do without a database: per step, load the instance from JSON, apply the
step, dump it again, with the engine's serializer and script engine. The gap between the two is the
engine's own work: transactions, task rows, status checks, the hash-chained history.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.clock import FixedClock
from engine.execution.functions import script_engine
from rules.calendar import WorkCalendar
from engine.definitions.status_paths import properties
from engine.definitions.forms import parse_form
from engine.store.models import Case
from engine.service import Engine
from engine.execution.spiff import SERIALIZER, GridBpmnParser

BPMN = Path(__file__).resolve().parent.parent / "processes" / "grid_matter.bpmn"
KEY = "grid_matter"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
WARMUP = 5
TARGET_RATIO = 3.0  # engine ms / bare ms per command, on SQLite
TARGET_RATE = 300  # engine commands per second, one process

# (command kind, element or message name, data, role)
STEPS = [
    ("start", None, {"title": "路灯损坏", "grid_code": "410702001001U001", "category": "民生事项服务"}, "grid_worker"),
    ("complete", "verify_register", {"verified": True, "within_authority": False}, None),
    ("complete", "accept_report", {"decision": "file"}, None),
    ("complete", "dispatch", {"unit": "红旗区城市照明管理所", "handling_days": 3}, None),
    ("sign", "handle", None, None),
    ("complete", "handle", {"result": "更换灯具", "final": True}, None),
    ("complete", "check_result", {"passed": True}, None),
    ("complete", "close_case", {"summary": "办结"}, None),
    ("message", "resident_follow_up", {"satisfied": True}, "platform"),
]
KINDS = ["start", "complete", "sign", "message"]


class Aborted(Exception):
    pass


def engine_lifecycle(engine: Engine, times: dict[str, list[int]]) -> None:
    clock = FixedClock(T0)
    cases = engine.cases
    case_id = None
    for kind, element, data, role in STEPS:
        clock.advance(minutes=10)
        if kind in ("complete", "sign"):
            # Finding the task is a read a client does before the command; it is not timed.
            open_tasks = [t for t in engine.queries.tasks(case_id=case_id) if t.element_id == element]
            if not open_tasks:
                raise Aborted(f"engine case {case_id}: no open {element} task")
            task = open_tasks[0]
        started = time.perf_counter_ns()
        if kind == "start":
            case_id = cases.start(KEY, dict(data), actor="w1", role=role, clock=clock)
        elif kind == "complete":
            cases.complete_task(task.id, dict(data), actor="someone", role=task.role, clock=clock)
        elif kind == "sign":
            cases.sign_for(task.id, actor="unit", role=task.role, clock=clock)
        else:
            cases.send_message(case_id, element, dict(data), actor="回访", role=role, clock=clock)
        times[kind].append(time.perf_counter_ns() - started)
    with engine.readers() as session:
        case = session.get(Case, case_id)
        if case.status != "evaluated" or case.finished_at is None or case.last_seq != len(STEPS):
            raise Aborted(f"engine case {case_id} ended {case.status!r} after {case.last_seq} events "
                          f"(finished_at={case.finished_at}); expected 'evaluated' after {len(STEPS)}")


class _InMemoryCalendar:
    """Bare SpiffWorkflow has no database: it gets the same calendar, held in memory."""

    def __init__(self):
        self._current = (0, WorkCalendar.from_chinese_calendar())

    def current(self):
        return self._current


BARE_CALENDAR = _InMemoryCalendar()


def bare_lifecycle(spec, subprocess_specs, times: dict[str, list[int]]) -> None:
    clock = FixedClock(T0)
    state = None
    for kind, element, data, _role in STEPS:
        clock.advance(minutes=10)
        started = time.perf_counter_ns()
        if kind == "start":
            workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine(clock, BARE_CALENDAR))
            for task in workflow.get_tasks(state=TaskState.READY):
                task.set_data(**data)
        else:
            workflow = SERIALIZER.loads(state, spec, subprocess_specs, script_engine(clock, BARE_CALENDAR))
        if kind == "message":
            workflow.send_event(BpmnEvent(MessageEventDefinition(element), payload=dict(data)))
        elif kind in ("complete", "sign"):
            ready = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                     if t.task_spec.bpmn_id == element]
            if not ready:
                raise Aborted(f"bare workflow: no ready {element} task")
            if kind == "complete":
                # As the engine does: optional form fields left out are None, so conditions can test them.
                optional = {f.name: None for f in parse_form(properties(ready[0].task_spec).get("form"))
                            if not f.required}
                ready[0].set_data(**{**optional, **data})
                ready[0].run()
        if kind != "sign":  # signing is the engine's own task lifecycle: SpiffWorkflow has nothing to do
            workflow.do_engine_steps()
        state = SERIALIZER.dumps(workflow)
        times[kind].append(time.perf_counter_ns() - started)
    if not workflow.is_completed():
        raise Aborted("bare workflow is not completed after the last step")


@contextmanager
def database(url: str | None):
    """The URL to run on. PostgreSQL gets a schema of its own, dropped afterwards, so no other table
    is touched; without a URL, a temporary SQLite file."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="gridflow-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    if not url.startswith("postgresql"):
        yield url
        return
    schema = f"gf_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}) \
            .render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def percentile(sorted_values: list[int], p: float) -> int:
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def stats_ms(values: list[int]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return (sum(ordered) / len(ordered) / 1e6, percentile(ordered, 0.5) / 1e6, percentile(ordered, 0.95) / 1e6)


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(cases: int, db_label: str, is_sqlite: bool, engine_times: dict, bare_times: dict) -> None:
    print(f"\nGridFlow lifecycle benchmark: {cases} cases x {len(STEPS)} commands per side "
          f"(+{WARMUP} warm-up cases), database: {db_label}")
    print(f"{'command':<9}{'count':>6} | {'engine ms: mean':>15}{'p50':>7}{'p95':>7} | "
          f"{'bare ms: mean':>13}{'p50':>7}{'p95':>7} | {'ratio':>6}  target")
    rows = [(kind, engine_times[kind], bare_times[kind]) for kind in KINDS]
    rows.append(("all", [v for k in KINDS for v in engine_times[k]], [v for k in KINDS for v in bare_times[k]]))
    for kind, engine_values, bare_values in rows:
        e_mean, e_p50, e_p95 = stats_ms(engine_values)
        b_mean, b_p50, b_p95 = stats_ms(bare_values)
        ratio = e_mean / b_mean
        print(f"{kind:<9}{len(engine_values):>6} | {e_mean:>15.3f}{e_p50:>7.3f}{e_p95:>7.3f} | "
              f"{b_mean:>13.3f}{b_p50:>7.3f}{b_p95:>7.3f} | {ratio:>5.2f}x  <= {TARGET_RATIO:g}x "
              f"{mark(ratio <= TARGET_RATIO)}")
    total_engine = sum(rows[-1][1]) / 1e9
    total_bare = sum(rows[-1][2]) / 1e9
    commands = len(rows[-1][1])
    rate = commands / total_engine
    ratio = total_engine / total_bare
    print(f"\nengine: {commands} commands in {total_engine:.2f} s of command time = {rate:,.0f} commands/s "
          f"(one process, one thread)   target >= {TARGET_RATE}/s   {mark(rate >= TARGET_RATE)}")
    print(f"bare SpiffWorkflow: {commands / total_bare:,.0f} steps/s")
    print(f"overall engine/bare: {ratio:.2f}x   target <= {TARGET_RATIO:g}x   {mark(ratio <= TARGET_RATIO)}")
    if not is_sqlite:
        print("(the ratio target is set for SQLite; on this database it is shown for reference)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help="measured lifecycles per side (default 200)")
    parser.add_argument("--db", help="database URL (default: a fresh temporary SQLite file); on PostgreSQL "
                                     "the benchmark creates and drops a schema of its own")
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error("--cases must be at least 1")

    bpmn = GridBpmnParser()
    bpmn.add_bpmn_file(str(BPMN))
    spec, subprocess_specs = bpmn.get_spec(KEY), bpmn.get_subprocess_specs(KEY)

    with database(args.db) as url:
        is_sqlite = url.startswith("sqlite")
        db_label = "SQLite (temporary file)" if args.db is None else \
            sa.engine.make_url(args.db).render_as_string(hide_password=True)
        engine = Engine(url)
        try:
            engine.definitions.deploy({BPMN.name: BPMN.read_bytes()}, "bench", FixedClock(T0))
            scratch = {k: [] for k in KINDS}
            for _ in range(WARMUP):
                engine_lifecycle(engine, scratch)
                bare_lifecycle(spec, subprocess_specs, scratch)
            engine_times = {k: [] for k in KINDS}
            bare_times = {k: [] for k in KINDS}
            step = max(1, args.cases // 10)
            for i in range(args.cases):
                # Alternate which side goes first so drift and cache effects fall on both alike.
                if i % 2:
                    bare_lifecycle(spec, subprocess_specs, bare_times)
                    engine_lifecycle(engine, engine_times)
                else:
                    engine_lifecycle(engine, engine_times)
                    bare_lifecycle(spec, subprocess_specs, bare_times)
                if (i + 1) % step == 0 or i + 1 == args.cases:
                    print(f"  {i + 1}/{args.cases} cases", file=sys.stderr, flush=True)
        except Aborted as exc:
            print(f"ABORTED: {exc}", file=sys.stderr)
            return 1
        finally:
            engine.close()
    report(args.cases, db_label, is_sqlite, engine_times, bare_times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
