"""The command path: a task completion through HTTP against bare SpiffWorkflow, with statements counted.

    python bench/command_path.py [--cases N] [--pg URL | --no-pg]

Two models, each on SQLite (a temporary file) and PostgreSQL (a schema of its own, dropped afterwards):
- `shape`: start -> task A -> exclusive gateway -> task B -> end, one lane;
- `grid_matter`: the shipped definition, walked from report to follow-up by the principals who act on it.

GridFlow's side is what the platform does: POST /tasks/{id}/complete through Flask's test client with a
bearer token, so authentication, the scope check, the command's transaction, the history event, the
outbox and the response are all in it. Finding the task id is a read the client does first and is not
timed. The bare side is the floor a persisted engine cannot go below: per step, load the instance from
JSON, apply the step, run engine steps, dump it again, with the engine's serializer and script engine.

Printed per model and database: completion mean/p50/p95 in ms for both sides, their ratio, and the
database statements and transactions (BEGIN ... COMMIT/ROLLBACK) per completion, counted with
SQLAlchemy's engine events around the timed calls only.
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle import BARE_CALENDAR, database, stats_ms  # noqa: E402

from api.http.app import create_app  # noqa: E402
from api.http.auth import issue_token  # noqa: E402
from engine.access.scopes import Principal  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.definitions.status_paths import properties  # noqa: E402
from engine.definitions.forms import parse_form  # noqa: E402
from engine.execution.functions import script_engine  # noqa: E402
from engine.execution.spiff import SERIALIZER, GridBpmnParser  # noqa: E402
from engine.service import Engine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JWT_KEY = "bench-signing-key-0123456789abcdef0123456789"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
GRID = "410702001001U001"
UNIT = "hq_chengguan"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WARMUP = 5

SHAPE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d_shape"
    targetNamespace="http://gridflow.example/bench">
  <bpmn:process id="shape" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l1" name="网格员 (grid_worker)">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>task_a</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>gw</bpmn:flowNodeRef><bpmn:flowNodeRef>task_b</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="task_a" name="A"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="form" value="go:bool"/></spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="gw" default="to_end"/>
    <bpmn:userTask id="task_b" name="B"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task_a"/>
    <bpmn:sequenceFlow id="f2" sourceRef="task_a" targetRef="gw"/>
    <bpmn:sequenceFlow id="to_b" sourceRef="gw" targetRef="task_b">
      <bpmn:conditionExpression>go == True</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_end" sourceRef="gw" targetRef="end"/>
    <bpmn:sequenceFlow id="f3" sourceRef="task_b" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
""".encode()

PRINCIPALS = {
    "worker": Principal("王网格", "grid_worker", grid_code=GRID),
    "agency": Principal("东风社区网格站", "grid_agency", level="community", area_code=GRID[:12]),
    "unit": Principal("区城管局", "responsible_unit", unit=UNIT),
    "platform": Principal("city-platform", "platform"),
}
MATTER = {"title": "路灯损坏", "grid_code": GRID, "category": "民生事项服务"}
# (element, who, data); data None = sign for
MODELS = {
    "shape": ("shape", {"title": "试", "grid_code": GRID},
              [("task_a", "worker", {"go": True}), ("task_b", "worker", {})]),
    "grid_matter": ("grid_matter", MATTER,
                    [("verify_register", "worker", {"verified": True, "within_authority": False}),
                     ("accept_report", "agency", {"decision": "file"}),
                     ("dispatch", "agency", {"unit": UNIT, "handling_days": 3}),
                     ("handle", "unit", None),
                     ("handle", "unit", {"result": "更换灯具", "final": True}),
                     ("check_result", "worker", {"passed": True}),
                     ("close_case", "agency", {"summary": "办结"})]),
}


class Counter:
    """Statements and transactions on one SQLAlchemy engine while `active`."""

    def __init__(self, db: sa.Engine):
        self.active = False
        self.statements = 0
        self.transactions = 0
        sa.event.listen(db, "before_cursor_execute", self._statement)
        sa.event.listen(db, "begin", self._begin)

    def _statement(self, *args, **kwargs):
        if self.active:
            self.statements += 1

    def _begin(self, *args, **kwargs):
        if self.active:
            self.transactions += 1

    @contextmanager
    def counting(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False


def engine_side(url: str, model: str, cases: int) -> tuple[list[int], float, float]:
    key, data, steps = MODELS[model]
    engine = Engine(url, pool_pre_ping=False)   # as `gridflow serve` runs it
    try:
        clock = FixedClock(T0)
        engine.registry.load_sample("bench", clock=clock)
        engine.definitions.deploy({"shape.bpmn": SHAPE,
                                   "grid_matter.bpmn": (ROOT / "processes" / "grid_matter.bpmn").read_bytes()},
                                  "bench", clock)
        client = create_app(engine, {"GRIDFLOW_JWT_KEY": JWT_KEY, "GRIDFLOW_CLOCK": clock}).test_client()
        headers = {who: {"Authorization": f"Bearer {issue_token(p, JWT_KEY)}"} for who, p in PRINCIPALS.items()}
        counter = Counter(engine.db)
        times: list[int] = []
        completions = 0
        for n in range(WARMUP + cases):
            clock.advance(minutes=10)
            started = client.post("/cases", json={"process_key": key, "data": dict(data)}, headers=headers["worker"])
            if started.status_code != 201:
                raise SystemExit(f"{model}: start failed: {started.status_code} {started.get_json()}")
            case_id = started.get_json()["id"]
            for element, who, form in steps:
                clock.advance(minutes=10)
                task = next(t for t in engine.queries.tasks(case_id=case_id) if t.element_id == element)
                path = f"/tasks/{task.id}/sign" if form is None else f"/tasks/{task.id}/complete"
                body = None if form is None else {"data": form}
                measured = n >= WARMUP and form is not None
                with (counter.counting() if measured else _nothing()):
                    t0 = time.perf_counter_ns()
                    response = client.post(path, json=body, headers=headers[who])
                    elapsed = time.perf_counter_ns() - t0
                if response.status_code != 200:
                    raise SystemExit(f"{model}: {element} by {who}: {response.status_code} {response.get_json()}")
                if measured:
                    times.append(elapsed)
                    completions += 1
        return times, counter.statements / completions, counter.transactions / completions
    finally:
        engine.close()


@contextmanager
def _nothing():
    yield


def bare_side(model: str, cases: int) -> list[int]:
    key, data, steps = MODELS[model]
    parser = GridBpmnParser()
    parser.add_bpmn_str(SHAPE if key == "shape" else (ROOT / "processes" / "grid_matter.bpmn").read_bytes())
    spec = parser.get_spec(key)
    subprocess_specs = parser.get_subprocess_specs(key)
    times: list[int] = []
    for n in range(WARMUP + cases):
        clock = FixedClock(T0)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine(clock, BARE_CALENDAR))
        for task in workflow.get_tasks(state=TaskState.READY):
            task.set_data(**data)
        workflow.do_engine_steps()
        state = SERIALIZER.dumps(workflow)
        for element, _who, form in steps:
            if form is None:
                continue   # signing for a task is the engine's own lifecycle: nothing for SpiffWorkflow to do
            clock.advance(minutes=10)
            t0 = time.perf_counter_ns()
            workflow = SERIALIZER.loads(state, spec, subprocess_specs, script_engine(clock, BARE_CALENDAR))
            ready = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                     if t.task_spec.bpmn_id == element]
            if not ready:
                raise SystemExit(f"bare {model}: no ready {element} task")
            optional = {f.name: None for f in parse_form(properties(ready[0].task_spec).get("form"))
                        if not f.required}
            ready[0].set_data(**{**optional, **form})
            ready[0].run()
            workflow.do_engine_steps()
            state = SERIALIZER.dumps(workflow)
            if n >= WARMUP:
                times.append(time.perf_counter_ns() - t0)
    return times


def pg_reachable(url: str) -> bool:
    try:
        probe = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with probe.connect():
            pass
        probe.dispose()
        return True
    except Exception:
        return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100, help="measured cases per model and side (default 100)")
    parser.add_argument("--pg", default=PG_DEFAULT, help=f"PostgreSQL URL (default {PG_DEFAULT})")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    databases = [("sqlite", None)]
    if not args.no_pg:
        if pg_reachable(args.pg):
            databases.append(("postgresql", args.pg))
        else:
            print(f"PostgreSQL unreachable at {args.pg}: SQLite only")
    print(f"Command path: task completion through HTTP (Flask test client) vs bare SpiffWorkflow "
          f"(load, step, dump); {args.cases} cases per model (+{WARMUP} warm-up)")
    print(f"{'model':<12}{'database':<11}{'n':>5} | {'GridFlow ms: mean':>17}{'p50':>7}{'p95':>7} | "
          f"{'bare ms: mean':>13}{'p50':>7}{'p95':>7} | {'ratio':>6} | {'stmts':>5} {'txns':>5}")
    for label, url in databases:
        for model in MODELS:
            # The baseline is measured right beside each run, so both sides see the same machine load.
            bare = bare_side(model, args.cases)
            with database(url) as db_url:
                times, statements, transactions = engine_side(db_url, model, args.cases)
            e_mean, e_p50, e_p95 = stats_ms(times)
            b_mean, b_p50, b_p95 = stats_ms(bare)
            print(f"{model:<12}{label:<11}{len(times):>5} | {e_mean:>17.3f}{e_p50:>7.3f}{e_p95:>7.3f} | "
                  f"{b_mean:>13.3f}{b_p50:>7.3f}{b_p95:>7.3f} | {e_mean / b_mean:>5.1f}x | "
                  f"{statements:>5.1f} {transactions:>5.1f}")
    print("stmts, txns: database statements and transactions per completion (GridFlow side)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
