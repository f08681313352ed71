"""HTTP API load test: gunicorn on PostgreSQL, driven from separate processes on loopback.

    python bench/api_load.py [--db URL] [--workers 4] [--clients 2] [--threads 4] [--seconds 20]

Set-up. A schema of its own on the server (created and dropped), the grid-matter process deployed,
`gridflow serve` started as a subprocess with `--workers` gunicorn workers. Each load thread acts as a
grid worker of its own grid (a JWT per thread) and runs a realistic mix in a closed loop, opening a
connection per request as a sync gunicorn worker expects:
  10% report a matter (POST /cases),    10% complete a verification task it got (POST /tasks/{id}/complete),
  40% list my tasks (GET /tasks),       40% read one of its cases (GET /cases/{id}).
Every response must have its expected status; any other is counted and makes the exit status non-zero.

Measured. Requests per second, p50 and p99 latency of the mix, per kind of request, and, in the same run
with the same clients, the baseline: GET /health (the same stack — gunicorn, Flask, a database round
trip — without the engine). The ratio says what the engine costs over the bare stack.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("GRIDFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MIX = [("start", 0.10), ("complete", 0.10), ("tasks", 0.40), ("case", 0.40)]


def _request(port: int, method: str, path: str, token: str | None, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, payload, elapsed


def _thread_loop(port, token, grid, seconds, kind_of_run, out, seed):
    rnd = random.Random(seed)
    cases: list[int] = []
    verify_tasks: list[int] = []
    results = []  # (kind, seconds, ok)
    deadline = time.perf_counter() + seconds

    def start():
        status, payload, t = _request(port, "POST", "/cases", token,
                                      {"process_key": "grid_matter", "data": {"title": "路灯损坏", "grid_code": grid,
                                                                              "category": "民生事项服务"}})
        if status == 201:
            body = json.loads(payload)
            cases.append(body["id"])
            verify_tasks.extend(task["id"] for task in body["open_tasks"] if task["element_id"] == "verify_register")
        return status == 201, t

    start()  # every thread has a case to read from its first request on
    while time.perf_counter() < deadline:
        if kind_of_run == "health":
            status, _, t = _request(port, "GET", "/health", None)
            results.append(("health", t, status == 200))
            continue
        roll, kind = rnd.random(), "case"
        for name, share in MIX:
            if roll < share:
                kind = name
                break
            roll -= share
        if kind == "complete" and not verify_tasks:
            kind = "start"
        if kind == "start":
            ok, t = start()
        elif kind == "complete":
            task_id = verify_tasks.pop()
            status, _, t = _request(port, "POST", f"/tasks/{task_id}/complete", token,
                                    {"data": {"verified": True, "within_authority": True}})
            ok = status == 200
        elif kind == "tasks":
            status, _, t = _request(port, "GET", "/tasks?per_page=20", token)
            ok = status == 200
        else:
            status, _, t = _request(port, "GET", f"/cases/{rnd.choice(cases)}", token)
            ok = status == 200
        results.append((kind, t, ok))
    out.extend(results)


def _client_process(port, tokens, seconds, kind_of_run, queue, seed):
    out: list = []
    threads = [threading.Thread(target=_thread_loop, args=(port, token, grid, seconds, kind_of_run, out, seed + i))
               for i, (token, grid) in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(out)


def drive(port, tokens, clients, seconds, kind_of_run):
    """Load from `clients` processes, each with its share of the threads; all start together."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    shares = [tokens[i::clients] for i in range(clients)]
    procs = [ctx.Process(target=_client_process, args=(port, share, seconds, kind_of_run, queue, 1000 * i))
             for i, share in enumerate(shares)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = []
    for _ in procs:
        results.extend(queue.get())
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    return results, wall


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def report(label, results, seconds):
    latencies = [t for _, t, _ in results]
    failures = sum(1 for *_, ok in results if not ok)
    rate = len(results) / seconds
    print(f"{label:10s} {rate:8.1f} req/s   p50 {1000 * _percentile(latencies, .5):6.1f} ms   "
          f"p99 {1000 * _percentile(latencies, .99):6.1f} ms   requests {len(results)}   failed {failures}")
    return rate, _percentile(latencies, .99), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_PG, help="PostgreSQL URL; a schema of its own is used")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per load process")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args()

    from api.http.auth import issue_token
    from engine.access.scopes import Principal
    from engine.clock import SYSTEM_CLOCK
    from engine.service import Engine

    schema = f"gf_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.db)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.engine.make_url(args.db).update_query_dict({"options": f"-csearch_path={schema}"}) \
        .render_as_string(hide_password=False)
    server = None
    try:
        engine = Engine(url)
        engine.definitions.deploy({"grid_matter.bpmn": (ROOT / "processes" / "grid_matter.bpmn").read_bytes()},
                                  "bench", SYSTEM_CLOCK)
        engine.close()
        port = args.port or _free_port()
        key = secrets.token_urlsafe(32)
        env = {**os.environ, "GRIDFLOW_JWT_KEY": key}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        server = subprocess.Popen([sys.executable, "-m", "api.cli", "--db", url, "serve", "--workers",
                                   str(args.workers), "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        _wait_healthy(port, server)
        n = args.clients * args.threads
        grids = [f"410702001001U{i + 1:03d}" for i in range(n)]
        tokens = [(issue_token(Principal(f"worker-{i}", "grid_worker", grid_code=g), key), g)
                  for i, g in enumerate(grids)]
        print(f"gunicorn: {args.workers} workers on PostgreSQL; load: {args.clients} processes x {args.threads} "
              f"threads, {args.seconds:.0f} s per run, {os.cpu_count()} cores shared")
        drive(port, tokens, args.clients, 2, "mix")  # warm-up: definitions parsed, pools filled
        base, base_wall = drive(port, tokens, args.clients, args.seconds, "health")
        mix, mix_wall = drive(port, tokens, args.clients, args.seconds, "mix")
        base_rate, _, base_failed = report("health", base, base_wall)
        rate, p99, failed = report("mix", mix, mix_wall)
        for kind, _ in MIX:
            report(f"  {kind}", [r for r in mix if r[0] == kind], mix_wall)
        print(f"mix / health throughput: {rate / base_rate:.2f}")
        target = rate >= 300 and p99 < 0.100
        print(f"target >= 300 req/s at p99 < 100 ms: {'met' if target else 'NOT met'}")
        return 1 if failed or base_failed else 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port, server):
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if _request(port, "GET", "/health", None)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not become healthy in 30 s")


if __name__ == "__main__":
    sys.exit(main())
