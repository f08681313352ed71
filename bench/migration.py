"""Instance migration benchmark: dry run and migration of many running cases on PostgreSQL.

    python bench/migration.py [--cases 10000] [--db postgresql+psycopg://postgres@127.0.0.1:5432/test]

Builds the cases first: a few real grid matters per state (reported, at the agency's acceptance,
dispatched with a waiting deadline, signed for, at the result check, closed and waiting for the follow-up)
run through the engine on version 1, then copied in bulk under new ids with their tasks, pending timers
and history chains (re-hashed for the new ids). Version 2 changes the handling deadline's expression, so
every case waiting on it is re-armed. Then, in the same run: reading every running case's state (the
floor a dry run pays), `migrations.plan` (dry run), an ordinary command (`remind`) on a sample of cases as
the per-transaction baseline, and `migrations.run`; it prints cases/s beside the targets and the
baselines, checks the timer index against the cases and replays a sample bit-exact.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle import database  # noqa: E402

from engine.cases.history import GENESIS, EventFields  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.service import Engine  # noqa: E402
from engine.store.models import Case, HistoryEvent, HumanTask, Timer  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BPMN = (ROOT / "processes" / "grid_matter.bpmn").read_text()
DEADLINE = '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">handling_due</bpmn:timeDate>'
V2 = BPMN.replace(DEADLINE, DEADLINE.replace(">handling_due<", ">add_days(handling_due, 1)<"))
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
MATTER = {"title": "路灯损坏", "grid_code": "410702001001U001", "category": "民生事项服务"}
PLAN_TARGET, RUN_TARGET = 1000, 200   # cases/s


class _Walk:
    def __init__(self, engine, clock):
        self.engine, self.clock = engine, clock
        self.id = engine.cases.start("grid_matter", dict(MATTER), actor="w", role="grid_worker", clock=clock,
                                     version=1)

    def do(self, element, **data):
        self.clock.advance(minutes=10)
        task = next(t for t in self.engine.queries.tasks(case_id=self.id) if t.element_id == element)
        if element == "handle" and task.state == "offered":
            self.engine.cases.sign_for(task.id, actor="unit", role="responsible_unit", clock=self.clock)
            if not data:
                return self
        self.engine.cases.complete_task(task.id, data, actor="someone", role=task.role, clock=self.clock)
        return self


STATES = [  # how far each template goes
    [],
    [("verify_register", {"verified": True, "within_authority": False})],
    [("verify_register", {"verified": True, "within_authority": False}), ("accept_report", {"decision": "file"}),
     ("dispatch", {"unit": "路灯所", "handling_days": 3})],
    [("verify_register", {"verified": True, "within_authority": False}), ("accept_report", {"decision": "file"}),
     ("dispatch", {"unit": "路灯所", "handling_days": 3}), ("handle", {})],
    [("verify_register", {"verified": True, "within_authority": False}), ("accept_report", {"decision": "file"}),
     ("dispatch", {"unit": "路灯所", "handling_days": 5}), ("handle", {"result": "ok"})],
    [("verify_register", {"verified": True, "within_authority": False}), ("accept_report", {"decision": "file"}),
     ("dispatch", {"unit": "路灯所", "handling_days": 3}), ("handle", {"result": "ok"}),
     ("check_result", {"passed": True}), ("close_case", {})],
]


def build(engine: Engine, cases: int, per_state: int = 3) -> None:
    clock = FixedClock(T0)
    engine.definitions.deploy({"grid_matter.bpmn": BPMN.encode()}, "bench", clock)
    for steps in STATES:
        for _ in range(per_state):
            walk = _Walk(engine, clock)
            for element, data in steps:
                walk.do(element, **data)
    with engine.readers() as s:
        templates = list(s.scalars(sa.select(Case).order_by(Case.id)))
        tasks = {c.id: list(s.scalars(sa.select(HumanTask).filter_by(case_id=c.id).order_by(HumanTask.id)))
                 for c in templates}
        events = {c.id: list(s.scalars(sa.select(HistoryEvent).filter_by(case_id=c.id).order_by(HistoryEvent.seq)))
                  for c in templates}
        timers = {c.id: list(s.scalars(sa.select(Timer).filter_by(case_id=c.id, state="pending")))
                  for c in templates}
        next_task = (s.scalar(sa.select(sa.func.max(HumanTask.id))) or 0) + 1
    case_cols = [c.key for c in Case.__table__.columns if c.key not in ("id", "last_event_hash")]
    task_cols = [c.key for c in HumanTask.__table__.columns if c.key not in ("id", "case_id")]
    timer_cols = [c.key for c in Timer.__table__.columns if c.key not in ("id", "case_id")]
    batch = {Case.__table__: [], HumanTask.__table__: [], HistoryEvent.__table__: [], Timer.__table__: []}

    def flush():
        with engine.db.begin() as conn:
            for table, rows in batch.items():
                if rows:
                    conn.execute(table.insert(), rows)
                    rows.clear()

    next_case = len(templates) + 1
    while next_case <= cases:
        template = templates[(next_case - 1) % len(templates)]
        task_ids = {}
        for t in tasks[template.id]:
            task_ids[t.id] = next_task
            batch[HumanTask.__table__].append({"id": next_task, "case_id": next_case,
                                               **{k: getattr(t, k) for k in task_cols}})
            next_task += 1
        for t in timers[template.id]:
            batch[Timer.__table__].append({"case_id": next_case, **{k: getattr(t, k) for k in timer_cols}})
        prev = GENESIS
        for e in events[template.id]:
            payload = e.payload if "task_id" not in e.payload else {**e.payload, "task_id": task_ids[e.payload["task_id"]]}
            fields = EventFields(next_case, e.seq, e.command, e.actor, e.role, payload, e.clock_time, e.definition_id,
                                 e.status_before, e.status_after, e.effects, e.state_hash, prev)
            prev = fields.digest()
            batch[HistoryEvent.__table__].append({**vars(fields), "event_hash": prev, "recorded_at": e.recorded_at})
        batch[Case.__table__].append({"id": next_case, **{k: getattr(template, k) for k in case_cols},
                                      "last_event_hash": prev})
        next_case += 1
        if len(batch[Case.__table__]) >= 500:
            flush()
    flush()
    if engine.db.dialect.name == "postgresql":
        with engine.db.begin() as conn:
            for table in ("cases", "tasks"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))")
            conn.exec_driver_sql("ANALYZE")


def timed(label, func, count, target=None, baseline=None):
    started = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - started
    rate = count / seconds
    extra = f"   target {target}/s: {'met' if rate >= target else 'NOT met'}" if target else ""
    if baseline:
        extra += f"   {baseline / rate:4.1f}x the baseline's time per case"
    print(f"{label:44s} {count:6d} in {seconds:6.2f} s  {rate:8.0f} cases/s{extra}", flush=True)
    return rate, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL (own schema, dropped after) or any URL")
    parser.add_argument("--sample", type=int, default=500, help="cases for the command baseline")
    args = parser.parse_args(argv)
    with database(args.db) as url:
        engine = Engine(url)
        started = time.perf_counter()
        build(engine, args.cases)
        clock = FixedClock(T0.replace(day=3))
        engine.definitions.deploy({"grid_matter.bpmn": V2.encode()}, "bench", clock)
        with engine.readers() as s:
            running = s.scalar(sa.select(sa.func.count()).select_from(Case).where(Case.finished_at.is_(None)))
            waiting = s.scalar(sa.select(sa.func.count()).select_from(Timer).where(Timer.state == "pending",
                                                                                 Timer.element_id == "handling_deadline"))
        print(f"built {running} running cases ({waiting} waiting on the handling deadline) in "
              f"{time.perf_counter() - started:.1f} s on {engine.db.dialect.name}", flush=True)

        def read_states():
            with engine.readers() as s:
                return sum(1 for _ in s.execute(sa.select(Case.id, Case.revision, Case.status, Case.state)
                                                .where(Case.finished_at.is_(None))
                                                .execution_options(yield_per=500)))

        read_rate, _ = timed("read every running case's state (baseline)", read_states, running)
        _, plan = timed("migrate plan (dry run)", lambda: engine.migrations.plan("grid_matter", 1, 2, clock=clock),
                        running, PLAN_TARGET, read_rate)
        assert plan.counts()["migratable"] == running, plan.counts()

        with engine.readers() as s:
            sample = list(s.scalars(sa.select(HumanTask.id).where(HumanTask.state == "offered",
                                                                  HumanTask.role == "responsible_unit")
                                    .order_by(HumanTask.id).limit(args.sample)))

        def reminders():
            for task_id in sample:
                engine.cases.remind(task_id, "请尽快办理", actor="agency", role="grid_agency", clock=clock)
        command_rate, _ = timed("remind, one command per case (baseline)", reminders, len(sample))
        run_rate, run = timed("migrate run", lambda: engine.migrations.run("grid_matter", 1, 2, actor="bench",
                                                                          clock=clock, plan=plan),
                              running, RUN_TARGET, command_rate)
        counts = run.counts()
        assert counts["migrated"] == running, counts
        print(f"  migrated {counts['migrated']}, re-checked since the plan {counts['rechecked']} "
              f"(the reminded ones)", flush=True)
        with engine.readers() as s:
            index = {(c, t): d for c, t, d in s.execute(sa.select(Timer.case_id, Timer.spiff_task_id, Timer.due_at)
                                                         .where(Timer.state == "pending"))}
            held = {(c.id, t): datetime.fromisoformat(d) for c in s.scalars(sa.select(Case)) for t, d in
                    (c.pending_timers or {}).items()}
        assert index == held, "timer index and cases disagree"
        print(f"  timer index exact: {len(index)} pending timers, every one as its case holds it")
        replayed = [engine.audit.replay(cid) for cid in range(1, running + 1, max(1, running // 50))]
        assert all(r.equal for r in replayed), next(r for r in replayed if not r.equal)
        print(f"  {len(replayed)} sampled cases replay bit-exact across the migration")
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
