"""Audit benchmark: verify and replay throughput over many stored cases.

    python bench/audit.py [--cases 10000] [--templates 40] [--db URL]

Builds the cases first: `--templates` full lifecycles (9 commands each, bench/lifecycle.py's steps) run
through the engine, then copied in bulk under new case ids with their task rows and their history chains
re-hashed for the new ids — real, replayable cases, made fast. Then measures, in the same run:
reading every event (the floor any audit pays), `audit verify` over all cases, and `audit replay --all`
with one and with two worker processes, and prints each as cases/s and as a ratio to the read baseline.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifecycle import BPMN, T0, engine_lifecycle  # noqa: E402

from engine.clock import FixedClock  # noqa: E402
from engine.cases.history import EventFields, GENESIS  # noqa: E402
from engine.store.models import Case, HistoryEvent, HumanTask  # noqa: E402
from engine.audit.replay import EVENT_COLUMNS  # noqa: E402
from engine.service import Engine  # noqa: E402

TARGET = 300  # cases/s replayed, both cores


def build(engine: Engine, cases: int, templates: int) -> None:
    engine.definitions.deploy({BPMN.name: BPMN.read_bytes()}, "bench", FixedClock(T0))
    for _ in range(templates):
        engine_lifecycle(engine, defaultdict(list))
    with engine.readers() as s:
        source_cases = list(s.scalars(sa.select(Case).order_by(Case.id)))
        source_tasks = {c.id: list(s.scalars(sa.select(HumanTask).filter_by(case_id=c.id).order_by(HumanTask.id)))
                        for c in source_cases}
        source_events = {c.id: list(s.scalars(sa.select(HistoryEvent).filter_by(case_id=c.id)
                                              .order_by(HistoryEvent.seq))) for c in source_cases}
    case_cols = [c.key for c in Case.__table__.columns if c.key != "id"]
    task_cols = [c.key for c in HumanTask.__table__.columns if c.key not in ("id", "case_id")]
    next_case = len(source_cases) + 1
    with engine.sessions() as s:
        next_task = (s.scalar(sa.select(sa.func.max(HumanTask.id))) or 0) + 1
    batch_cases, batch_tasks, batch_events = [], [], []

    def flush():
        with engine.db.begin() as conn:
            for table, rows in ((Case.__table__, batch_cases), (HumanTask.__table__, batch_tasks),
                                (HistoryEvent.__table__, batch_events)):
                if rows:
                    conn.execute(table.insert(), rows)
        for rows in (batch_cases, batch_tasks, batch_events):
            rows.clear()

    while next_case <= cases:
        template = source_cases[(next_case - 1) % len(source_cases)]
        events = [{**vars(EventFields(next_case, e.seq, e.command, e.actor, e.role, e.payload, e.clock_time,
                                      e.definition_id, e.status_before, e.status_after, e.effects, e.state_hash, "")),
                   "recorded_at": e.recorded_at} for e in source_events[template.id]]
        task_ids = {}
        for t in source_tasks[template.id]:
            task_ids[t.id] = next_task
            batch_tasks.append({"id": next_task, "case_id": next_case, **{k: getattr(t, k) for k in task_cols}})
            next_task += 1
        for event in events:  # payloads name tasks by id: point them at the copies
            if "task_id" in event["payload"]:
                event["payload"] = {**event["payload"], "task_id": task_ids[event["payload"]["task_id"]]}
        # the payload changed, so the chain is hashed again in order
        prev = GENESIS
        for event in events:
            event["prev_hash"] = prev
            event["event_hash"] = prev = EventFields(**{k: event[k] for k in EventFields.__dataclass_fields__}).digest()
        batch_events.extend(events)
        batch_cases.append({"id": next_case, **{k: getattr(template, k) for k in case_cols},
                            "last_event_hash": prev, "pending_timers": {}})
        next_case += 1
        if len(batch_cases) >= 500:
            flush()
    flush()


def timed(label, func, cases, baseline=None):
    started = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - started
    rate = cases / seconds
    ratio = f"   {baseline / rate:5.1f}x the read baseline's time" if baseline else ""
    print(f"{label:34s} {seconds:7.2f} s   {rate:8.0f} cases/s{ratio}")
    return rate, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='gridflow-bench-')}/audit.db"
    engine = Engine(url)
    started = time.perf_counter()
    build(engine, args.cases, args.templates)
    with engine.readers() as s:
        cases = s.scalar(sa.select(sa.func.count(Case.id)))
        events = s.scalar(sa.select(sa.func.count(HistoryEvent.id)))
    print(f"built {cases} cases, {events} events in {time.perf_counter() - started:.1f} s on {engine.url}")

    def read_all():
        with engine.readers() as s:
            return sum(1 for _ in s.execute(sa.select(*EVENT_COLUMNS).order_by(HistoryEvent.case_id, HistoryEvent.seq)
                                            .execution_options(yield_per=2000)))

    base, _ = timed("read every event (baseline)", read_all, cases)
    _, report = timed("audit verify (all cases)", lambda: engine.audit.verify(use_key=False), cases, base)
    assert report.intact, report.findings
    one, report = timed("audit replay --all, 1 process", lambda: engine.audit.replay_all(processes=1), cases, base)
    assert report.equal == cases, report.results[:1]
    two, report = timed("audit replay --all, 2 processes", lambda: engine.audit.replay_all(processes=2), cases, base)
    assert report.equal == cases, report.results[:1]
    print(f"replay with 2 processes: {two / one:.2f}x one process; target {TARGET} cases/s: "
          f"{'met' if two >= TARGET else 'NOT met'}")
    engine.close()


if __name__ == "__main__":
    main()
