"""Retries with an Idempotency-Key act exactly once: a server process killed between the commit and its
response is answered from the committed command on retry; a request that never committed leaves no record
and its retry runs it; of concurrent commands on one task exactly one wins and every loser gets 409."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.http.errors import from_engine
from engine.access.idempotency import COMMITTED, KeyInFlight
from engine.clock import FixedClock
from engine.errors import InvalidCommand
from engine.service import Engine
from engine.store.models import Case, IdempotencyRecord

from .api_fixtures import GRID, JWT_KEY, bearer, make_api
from .conftest import T0, grid_matter_upload, registered

ROOT = Path(__file__).resolve().parent.parent
START = {"process_key": "grid_matter", "data": {"title": "井盖缺失", "grid_code": GRID}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, path: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        conn.close()


def _wait_until_serving(server: subprocess.Popen, port: int) -> None:
    for _ in range(600):  # up to a minute; returns as soon as the port answers
        if server.poll() is not None:
            raise AssertionError(f"the server exited: {server.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def _count(engine, model, *where) -> int:
    with engine.readers() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_a_worker_killed_after_the_commit_is_answered_on_retry_from_what_it_committed(tmp_path):
    url = f"sqlite:///{tmp_path / 'gridflow.db'}"
    engine = Engine(url)
    registered(engine, FixedClock(T0))
    engine.definitions.deploy(grid_matter_upload(), "admin", FixedClock(T0))
    port = _free_port()
    env = {**os.environ, "GRIDFLOW_DATABASE_URL": url, "GRIDFLOW_JWT_KEY": JWT_KEY,
           "GRIDFLOW_TEST_CRASH_AFTER_COMMIT": "1", "PYTHONPATH": str(ROOT)}
    # A real gunicorn: its worker dies by the fault hook right after the command commits; the master starts
    # a new worker, which serves the retry.
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
                               "api.http.app:create_app()"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_serving(server, port)
        key = {"Idempotency-Key": "hotline-crash-0001", **bearer("worker")}
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _post(port, "/cases", START, key)
        assert _count(engine, Case) == 1   # the command committed
        assert _count(engine, IdempotencyRecord, IdempotencyRecord.state == COMMITTED) == 1
        _wait_until_serving(server, port)
        status, headers, body = None, {}, None
        for _ in range(600):  # the master may still be starting the new worker
            try:
                status, headers, body = _post(port, "/cases", START, key)
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                time.sleep(0.1)
        assert status == 201 and headers.get("Idempotent-Replayed") == "true", body
        assert body["title"] == "井盖缺失" and headers["Location"].endswith(f"/cases/{body['id']}")
        again = _post(port, "/cases", START, key)
        assert again[0] == 201 and again[2] == body
        assert _count(engine, Case) == 1   # acted once
    finally:
        server.terminate()
        server.wait(timeout=60)
        engine.close()


def test_a_request_that_never_committed_leaves_no_record_and_its_retry_runs(deployed, clock):
    store = deployed.idempotency
    with store.pending("worker", "k-1", "f" * 64, clock):
        with pytest.raises(InvalidCommand):   # refused inside its transaction: nothing committed
            deployed.cases.start("grid_matter", {"title": "x", "grid_code": GRID, "sub_category": "no-such-kind"}, actor="w",
                                 role="grid_worker", clock=clock)
    assert store.lookup("worker", "k-1", "f" * 64) is None
    with store.pending("worker", "k-1", "f" * 64, clock) as claim:
        case_id = deployed.cases.start("grid_matter", {"title": "x", "grid_code": GRID}, actor="w", role="grid_worker", clock=clock)
    assert claim.recorded and claim.case_id == case_id
    replay = store.lookup("worker", "k-1", "f" * 64)
    assert replay.status_code is None and replay.case_id == case_id


def test_a_second_commit_with_the_key_is_rolled_back_and_its_409_says_why(deployed, clock):
    store = deployed.idempotency
    with store.pending("grid_worker:w", "dup", "0" * 64, clock):
        deployed.cases.start("grid_matter", {"title": "y", "grid_code": GRID}, actor="w", role="grid_worker", clock=clock)
    # Another request with the key got past its look-up before the first committed: its commit is refused.
    with pytest.raises(KeyInFlight, match="retry shortly"):
        with store.pending("grid_worker:w", "dup", "0" * 64, clock):
            deployed.cases.start("grid_matter", {"title": "y", "grid_code": GRID}, actor="w", role="grid_worker", clock=clock)
    assert _count(deployed, Case) == 1
    error = from_engine(KeyInFlight("x"))
    assert error.status == 409 and error.code == "conflict"
    assert "幂等键" in error.zh and "其他操作修改" not in error.zh   # not "another command changed the case"


def test_concurrent_completions_of_one_task_one_wins_every_loser_gets_409(pg_url):
    engine = Engine(pg_url)
    api = make_api(engine, FixedClock(T0))
    case_id, handle = api.walk_to_handle()
    assert api.call("post", f"/tasks/{handle}/sign", "unit").status_code == 200
    events_before = len(engine.queries.history(case_id))
    losers = 6
    app = api.client.application
    results: list = []

    def complete():
        client = app.test_client()
        response = client.post(f"/tasks/{handle}/complete", json={"data": {"result": "已修复"}},
                               headers=bearer("unit"))
        results.append((response.status_code, response.get_json()))

    # The case row is locked while the requests come in, so all of them are checked against the open task
    # before any can commit: they overlap for sure, and then race for it.
    blocker = sa.create_engine(pg_url)
    with blocker.connect() as conn:
        tx = conn.begin()
        conn.execute(sa.text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
        threads = [threading.Thread(target=complete) for _ in range(losers + 1)]
        for t in threads:
            t.start()
        for _ in range(6000):   # until every request waits on the lock (or has finished)
            waiting = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND datname = current_database()")).scalar()
            if waiting + len(results) >= losers + 1:
                break
            time.sleep(0.01)
        tx.rollback()
    for t in threads:
        t.join()
    blocker.dispose()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * losers, results
    assert all(body["error"]["code"] == "conflict" for status, body in results if status == 409)
    assert [e.command for e in engine.queries.history(case_id)[events_before:]] == ["complete"]
    # Asked again once the task is closed, it is a plain refusal of a closed task, not a race.
    late = api.call("post", f"/tasks/{handle}/complete", "unit", {"data": {"result": "x"}})
    assert late.status_code == 422 and late.json["error"]["code"] == "invalid_command"
    engine.close()


def test_a_task_closed_after_the_request_was_checked_is_a_conflict(deployed, clock):
    """On SQLite, writers queue; the loser's transaction then finds the task closed: still a lost race."""
    api = make_api(deployed, clock)
    case_id, handle = api.walk_to_handle()
    api.call("post", f"/tasks/{handle}/sign", "unit")
    acting = deployed.acting
    from engine.cases import acting as acting_module
    target = acting._own_task(acting_module.Principal("区城管局", "responsible_unit", unit="hq_chengguan"), handle,
                              "complete")
    deployed.cases.complete_task(handle, {"result": "done"}, actor="u", role="responsible_unit", clock=clock)
    from engine.errors import Conflict
    with pytest.raises(Conflict, match="another command closed it"):
        acting_module._raced(target, deployed.cases.complete_task, handle, {"result": "again"}, actor="u",
                             role="responsible_unit", clock=clock)
