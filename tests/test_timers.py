"""The timer index and sweep: armed, moved, cancelled with their tasks; fired once, by the injected
clock, after downtime too, by one worker or several processes on PostgreSQL and SQLite."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from engine.cases.history import verify_chain
from engine.store.models import HistoryEvent
from tests.conftest import PROCESSES, T0, grid_matter_upload, registered
from tests.test_cases import Walk, working_days_after


def _pending(engine, case_id):
    return [(t.element_id, t.due_at) for t in engine.timers.pending(case_id)]


def test_a_waiting_timer_is_indexed_with_its_due_time(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3)
    dispatched_at = clock.now()
    due = working_days_after(deployed, dispatched_at, 3)
    assert _pending(deployed, walk.id) == [("handling_deadline", due)]
    timers = deployed.queries.history(walk.id)[-1].effects["timers"]
    assert timers == [["handling_deadline", due.isoformat(), "armed"]]


def test_the_sweep_fires_at_the_due_time_and_not_a_second_before(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3)
    due = working_days_after(deployed, clock.now(), 3)
    clock.set(due)
    assert deployed.timers.sweep(clock).fired_cases == 0
    assert walk.view.status == "dispatched"
    clock.set(due + timedelta(seconds=1))
    assert deployed.timers.sweep(clock, worker="w1").fired_cases == 1
    assert walk.view.status == "overdue" and "explain_overdue" in walk.open
    event = deployed.queries.history(walk.id)[-1]
    assert (event.command, event.actor, event.clock_time) == ("timers", "w1", due + timedelta(seconds=1))
    assert event.payload == {"due": [{"element": "handling_deadline", "due_at": due.isoformat()}]}
    assert _pending(deployed, walk.id) == []
    assert deployed.timers.sweep(clock).fired_cases == 0  # once only


def test_after_downtime_the_first_sweep_fires_every_missed_timer_with_due_and_run_times(deployed, clock):
    walks = [Walk(deployed, clock).dispatched(days=d) for d in (1, 2, 3, 4, 5)]
    down_until = clock.now() + timedelta(days=30)
    clock.set(down_until)
    assert deployed.timers.sweep(clock, batch=2).fired_cases == 5
    for walk in walks:
        event = deployed.queries.history(walk.id)[-1]
        assert event.command == "timers" and event.clock_time == down_until
        assert event.payload["due"][0]["due_at"] < down_until.isoformat()
        assert walk.view.status == "overdue"


def test_a_timer_ends_with_its_task_and_re_arms_on_re_dispatch(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3)
    first_due = _pending(deployed, walk.id)[0][1]
    walk.give_back("不属本单位")
    assert _pending(deployed, walk.id) == []
    assert deployed.queries.history(walk.id)[-1].effects["timers"] == [
        ["handling_deadline", first_due.isoformat(), "cancelled"]]
    clock.advance(days=1)
    walk.do("dispatch", unit="B", handling_days=5)
    assert _pending(deployed, walk.id) == [("handling_deadline", working_days_after(deployed, clock.now(), 5))]
    walk.sign().do("handle", result="ok")
    assert _pending(deployed, walk.id) == []


def test_follow_up_window_timer_closes_the_matter_after_seven_days(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    walk.sign().do("handle", result="ok").do("check_result", passed=True).do("close_case")
    [(element, due)] = _pending(deployed, walk.id)
    assert element == "gw_follow_up" and due == clock.now() + timedelta(days=7)
    clock.set(due + timedelta(minutes=1))
    assert deployed.timers.sweep(clock).fired_cases == 1
    assert walk.view.finished_at is not None and walk.view.status == "closed"


def test_a_timer_that_fails_when_it_fires_is_marked_and_the_sweep_goes_on(engine, clock):
    # Deploy checks cannot evaluate conditions: a returned task may lawfully go back to dispatched, so
    # this drawing passes, but a signed-for task that runs late would move in_progress → dispatched.
    xml = grid_matter_upload()["grid_matter.bpmn"].replace(b'name="status" value="overdue"',
                                                           b'name="status" value="dispatched"')
    xml = xml.replace(b'name="status" value="suspended"', b'name="status" value="overdue"')
    registered(engine, clock)
    engine.definitions.deploy({"grid_matter.bpmn": xml}, "admin", clock)
    bad = Walk(engine, clock).dispatched(days=1).sign()
    clock.set(clock.now() + timedelta(days=4))
    result = engine.timers.sweep(clock)
    assert (result.fired_cases, result.failed_cases) == (0, 1)
    assert "unlawful status move" in result.errors[0]
    assert _pending(engine, bad.id) == []
    assert engine.timers.sweep(clock).failed_cases == 0  # not retried forever
    assert bad.view.status == "in_progress"


# -- several worker processes -------------------------------------------------------------------------

def _sweeper(url, at, barrier, results):
    from engine.clock import FixedClock
    from engine.service import Engine

    engine = Engine(url, migrate=False)
    barrier.wait()
    result = engine.timers.sweep(FixedClock(at), worker=f"w{os.getpid()}", batch=10)
    results.put((result.fired_cases, result.failed_cases))
    engine.close()


def _many_due(engine, clock, n):
    ids = []
    for _ in range(n):
        ids.append(Walk(engine, clock).dispatched(days=1).id)
    return ids


@pytest.mark.parametrize("db", ["postgresql", "sqlite"])
def test_two_worker_processes_fire_each_timer_exactly_once(db, request, tmp_path, clock):
    from engine.service import Engine

    url = request.getfixturevalue("pg_url") if db == "postgresql" else f"sqlite:///{tmp_path / 'w.db'}"
    engine = Engine(url)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    case_ids = _many_due(engine, clock, 60)
    at = clock.now() + timedelta(days=4)

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_sweeper, args=(url, at, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)

    assert sum(fired for fired, _ in outcomes) == len(case_ids) and all(f == 0 for _, f in outcomes)
    with engine.sessions() as s:
        for case_id in case_ids:
            events = s.query(HistoryEvent).filter_by(case_id=case_id).order_by(HistoryEvent.seq).all()
            assert [e.command for e in events].count("timers") == 1
            assert verify_chain(case_id, events) is None
    assert engine.timers.pending() == []
    engine.close()


def test_gridflow_worker_catches_up_at_start_and_stops_on_sigterm(tmp_path):
    """The real service: timers that fell due while it was down fire at its first sweep."""
    from engine.clock import FixedClock
    from engine.service import Engine

    url = f"sqlite:///{tmp_path / 'svc.db'}"
    engine = Engine(url)
    clock = FixedClock(T0)  # weeks before today's real time: every deadline below is long past
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    case_ids = _many_due(engine, clock, 3)
    env = {**os.environ, "GRIDFLOW_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--interval", "0.5"], cwd=PROCESSES.parent,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(engine.queries.case(c).status != "overdue" for c in case_ids):
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert all(engine.queries.case(c).status == "overdue" for c in case_ids), err
    assert "fired timers of 3 cases" in out and "stopped" in out
    assert proc.returncode == 0 and "Traceback" not in err
    engine.close()
