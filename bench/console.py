"""Console benchmark: each page's server time (p50/p95) with many cases, as each role sees it.

    python bench/console.py [--cases N] [--db URL] [--requests N]

Loads N cases in bulk (bench/statistics.py's generator: cases and statistics facts over 2026 in 200 grids
of one county), then walks `--walked` real matters through the engine to the responsible unit (tasks,
history, timers, personal data) in the grid the worker account belongs to. Each page is then requested
`--requests` times through Flask's test client with a signed-in session: the time is the server's (routing,
session, account lookup, queries, template), not the network's. Target: p95 < 150 ms per page. The first
request of each page is shown apart: the dashboard's figures are computed then and reused for a minute.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api import console  # noqa: E402
from api.http.app import create_app  # noqa: E402
from bench.lifecycle import BPMN, database, percentile  # noqa: E402
from bench.statistics import GRIDS, load  # noqa: E402
from engine.access.scopes import Principal  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.service import Engine  # noqa: E402

GRID = GRIDS[0]
UNIT = "hq_chengguan"
PASSWORD = "bench-password-123"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
ACCOUNTS = {
    "worker": ("grid_worker", {"grid_code": GRID}),
    "community": ("grid_agency", {"level": "community", "area_code": GRID[:12]}),
    "county": ("grid_agency", {"level": "county", "area_code": GRID[:6]}),
    "unit": ("responsible_unit", {"unit": UNIT}),
    "auditor": ("auditor", {}),
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def walk(engine: Engine, count: int, clock) -> list[tuple[int, int]]:
    """`count` matters reported in GRID and dispatched to UNIT; (case id, handle task id) each."""
    worker = Principal("worker", "grid_worker", grid_code=GRID)
    agency = Principal("community", "grid_agency", level="community", area_code=GRID[:12])
    walked = []
    for n in range(count):
        case_id = engine.acting.start(worker, "grid_matter", {
            "title": f"路灯损坏 {n}", "sub_category": "road_lighting", "category": "民生事项服务",
            "reporter": {"name": "李秀英", "phone": "13800000001"}}, clock=clock)

        def task(element):
            return next(t.id for t in engine.queries.tasks(case_id=case_id) if t.element_id == element)
        engine.acting.complete(worker, task("verify_register"), {"verified": True, "within_authority": False},
                               clock=clock)
        engine.acting.complete(agency, task("accept_report"), {"decision": "file"}, clock=clock)
        engine.acting.complete(agency, task("dispatch"), {"unit": UNIT, "handling_days": 3}, clock=clock)
        walked.append((case_id, task("handle")))
    return walked


def signed_in(app, name: str):
    client = app.test_client()
    token = CSRF.search(client.get("/console/sign-in").text).group(1)
    answer = client.post("/console/sign-in", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302, answer.text[-500:]
    return client


def timed(client, path: str, requests: int) -> tuple[float, float, float, int]:
    started = time.perf_counter()
    client.get(path)  # the first: templates compiled, definition parsed, the dashboard's reports computed
    first = (time.perf_counter() - started) * 1000
    times = []
    status = 0
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        status = answer.status_code
    times.sort()
    return first, percentile(times, 0.5), percentile(times, 0.95), status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file); PostgreSQL gets its own schema")
    parser.add_argument("--walked", type=int, default=30, help="matters walked through the engine")
    parser.add_argument("--requests", type=int, default=30, help="requests per page")
    args = parser.parse_args(argv)
    clock = FixedClock(datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    with database(args.db) as url:
        engine = Engine(url)
        try:
            engine.definitions.deploy({BPMN.name: BPMN.read_bytes()}, "bench", clock)
            engine.registry.load_sample("bench")
            seconds = load(engine, args.cases)
            if engine.db.dialect.name == "postgresql":
                with engine.db.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")  # planner statistics after a bulk load, as any restore does
            walked = walk(engine, args.walked, clock)
            for name, (role, scope) in ACCOUNTS.items():
                engine.accounts.add(name, role, PASSWORD, by="bench", **scope)
            app = console.register(create_app(engine, {"GRIDFLOW_CLOCK": FixedClock(NOW),
                                                       "GRIDFLOW_CONSOLE_SECRET": "bench-" * 8}))
            case_id, handle = walked[-1]
            drill = ("/console/dashboard/cases?figure=reported&part=numerator&period_start=2026-06-01"
                     "&period_end=2026-07-01")
            pages = [
                ("worker", "/console/tasks"), ("unit", "/console/tasks"), ("community", "/console/tasks"),
                ("unit", f"/console/tasks/{handle}"),
                ("worker", "/console/cases"), ("county", "/console/cases"), ("county", "/console/cases?overdue=yes"),
                ("auditor", "/console/cases?status=closed&page=40"),
                ("community", f"/console/cases/{case_id}"), ("unit", f"/console/cases/{case_id}"),
                ("community", f"/console/cases/{case_id}/path.json"),
                ("worker", "/console/report"),
                ("county", "/console/dashboard?month=2026-06"), ("county", "/console/dashboard/data.json?month=2026-06"),
                ("county", drill),
                ("auditor", "/console/registry"), ("auditor", f"/console/registry/grids/{GRID}"),
            ]
            clients = {name: signed_in(app, name) for name in ACCOUNTS}
            print(f"\nconsole benchmark on {engine.db.dialect.name}: {args.cases:,} bulk cases (loaded in "
                  f"{seconds:.0f} s) + {args.walked} walked; {args.requests} requests per page; target p95 < 150 ms")
            print(f"{'page':<62} {'as':<10} {'first':>7} {'p50 ms':>7} {'p95 ms':>7}  status")
            worst = 0.0
            for who, path in pages:
                first, p50, p95, status = timed(clients[who], path, args.requests)
                worst = max(worst, p95)
                mark = "PASS" if p95 < 150 and status == 200 else "MISS"
                print(f"{path[:62]:<62} {who:<10} {first:7.1f} {p50:7.1f} {p95:7.1f}  {status} {mark}")
            print(f"worst p95: {worst:.1f} ms")
        finally:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
