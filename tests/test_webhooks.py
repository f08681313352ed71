"""Events out: the outbox written with each command, signed webhooks to a real local receiver, a
receiver that is down then up, retries and dead deliveries, warnings once, and several delivery
processes delivering each event once and in order per case."""
from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from engine.clock import FixedClock
from engine.errors import Conflict, InvalidCommand
from engine.store.models import Case, HumanTask, OutboxEvent, WebhookDelivery
from engine.service import Engine
from engine.delivery.webhooks import DeliverySettings, Webhooks, body_of, sign, task_of, verify
from tests.conftest import PROCESSES, T0, grid_matter_upload, registered
from tests.test_cases import MATTER, Walk

SECRET = "s3cret-for-the-platform-0123"
PERSONAL = {"reporter_name": "张三丰", "reporter_phone": "13800001111", "reporter_id_number": "410702199001011234",
            "reporter_address": "人民路88号3单元"}


class Receiver:
    """The platform's side: a real HTTP server on 127.0.0.1 that checks every signature itself."""

    def __init__(self, secret: str = SECRET, port: int = 0):
        self.secret = secret
        self.accepted: list[dict] = []   # documents answered with 200, in arrival order
        self.headers: list[dict] = []
        self.bad_signatures = 0
        self.answers: list[int] = []     # statuses to answer next (then 200)
        self.stall = 0.0                 # seconds to wait before answering
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.stall)
                with receiver.lock:
                    status = receiver._answer(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, headers, body: bytes) -> int:
        # Checked independently of engine.webhooks: HMAC-SHA256 over "<t>." + body.
        parts = dict(p.split("=", 1) for p in headers["X-GridFlow-Signature"].split(","))
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]) or abs(time.time() - int(parts["t"])) > 300:
            self.bad_signatures += 1
            return 401
        if self.answers:
            return self.answers.pop(0)
        document = json.loads(body)
        assert document["id"] == headers["X-GridFlow-Event-Id"]
        self.accepted.append(document)
        self.headers.append(dict(headers))
        return 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/gridflow"

    def ids(self) -> list[str]:
        return [d["id"] for d in self.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outbox(engine) -> list[OutboxEvent]:
    with engine.readers() as session:
        return list(session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)))


def bodies(engine) -> list[dict]:
    """Every event as a receiver gets it."""
    with engine.readers() as session:
        rows = session.execute(task_of(sa.select(OutboxEvent, HumanTask.id)).order_by(OutboxEvent.id)).all()
    return [json.loads(body_of(event, task_id)) for event, task_id in rows]


def deliveries(engine) -> list[WebhookDelivery]:
    with engine.readers() as session:
        return list(session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))


# -- the outbox ---------------------------------------------------------------------------------------

def test_a_command_writes_its_events_with_it_and_no_personal_data(deployed, clock):
    walk = Walk(deployed, clock, data={**MATTER, **PERSONAL}).dispatched(days=2)
    events = outbox(deployed)
    assert [(e.kind, e.payload.get("task", {}).get("element")) for e in events] == [
        ("case.status_changed", None), ("task.created", "verify_register"),
        ("case.status_changed", None), ("task.created", "accept_report"),
        ("task.created", "dispatch"),
        ("case.status_changed", None), ("task.created", "handle")]
    assert [e.payload["status_after"] for e in events if e.kind == "case.status_changed"] == \
        ["reported", "escalated", "dispatched"]
    assert events[2].payload["path"] == ["reported", "registered", "escalated"]
    handle = walk.task("handle")
    created = events[-1]
    assert created.case_id == walk.id
    [timer] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    body = bodies(deployed)[-1]
    assert body["task"] == {"id": handle.id, "element": "handle", "name": handle.name, "role": "responsible_unit",
                            "unit": "路灯所", "agency_level": None, "state": "offered",
                            "deadline": timer.due_at.isoformat()}
    assert body["case"]["grid_code"] == MATTER["grid_code"] and body["case"]["process_key"] == "grid_matter"
    assert body["type"] == "task.created" and body["id"] == created.uid
    everything = json.dumps(bodies(deployed), ensure_ascii=False)
    for value in PERSONAL.values():
        assert value not in everything
    assert events[0].occurred_at == T0 and events[-1].occurred_at == clock.now()  # the commands' clock


def test_a_command_that_is_refused_enqueues_nothing(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=2)
    before = len(outbox(deployed))
    with pytest.raises(InvalidCommand):
        walk.do("handle", result="x", not_a_field=1)
    with pytest.raises(InvalidCommand):
        deployed.cases.return_task(walk.task("handle").id, " ", actor="u", role="responsible_unit", clock=clock)
    assert len(outbox(deployed)) == before
    walk.sign()
    assert len(outbox(deployed)) == before + 1  # in_progress


class _MeddlingClock(FixedClock):
    """Each time the command reads the time, another connection changes the case under it: its commit
    then loses on the case's revision, as against a concurrent command."""

    def __init__(self, at, url, case_id):
        super().__init__(at)
        self.other = sa.create_engine(url)
        self.case_id = case_id

    def now(self):
        with self.other.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            try:
                with conn.begin_nested():
                    conn.execute(sa.update(Case).where(Case.id == self.case_id).values(revision=Case.revision + 1))
            except sa.exc.OperationalError:
                pass  # the command already wrote the row: from here on it wins
        return super().now()


def test_a_command_that_loses_a_conflict_enqueues_nothing(pg_url, clock):
    engine = Engine(pg_url)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    walk = Walk(engine, clock).dispatched(days=2)
    before = [e.id for e in outbox(engine)]
    meddling = _MeddlingClock(clock.now(), pg_url, walk.id)
    with pytest.raises(Conflict):
        engine.cases.sign_for(walk.task("handle").id, actor="u", role="responsible_unit", clock=meddling)
    meddling.other.dispose()
    assert [e.id for e in outbox(engine)] == before
    walk.sign()
    assert [e.kind for e in outbox(engine)][len(before):] == ["case.status_changed"]
    engine.close()


def test_overdue_events_come_with_the_timer_firing(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=1)
    [timer] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    before = len(outbox(deployed))
    clock.set(timer.due_at + timedelta(minutes=1))
    assert deployed.timers.sweep(clock).fired_cases == 1
    fired = outbox(deployed)[before:]
    assert [e.kind for e in fired] == ["case.status_changed", "case.overdue", "task.overdue", "task.created"]
    assert fired[0].payload["status_after"] == fired[1].payload["status_after"] == "overdue"
    overdue = bodies(deployed)[before + 2]
    assert overdue["task"]["id"] == walk.task("handle").id and overdue["task"]["state"] == "overdue"
    assert overdue["task"]["deadline"] == timer.due_at.isoformat()
    assert fired[3].payload["task"]["element"] == "explain_overdue"
    assert all(e.occurred_at == clock.now() for e in fired)


def test_a_warning_goes_out_once_when_a_task_crosses_into_yellow(deployed, clock):
    walk = Walk(deployed, clock).dispatched(days=3).sign()
    [timer] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    span = timer.due_at - timer.created_at
    clock.set(timer.created_at + span * 0.5)
    assert deployed.outbox.emit_warnings(clock) == 0
    clock.set(timer.created_at + span * 0.75)
    assert deployed.outbox.emit_warnings(clock) == 1
    assert deployed.outbox.emit_warnings(clock) == 0
    clock.advance(hours=1)
    assert deployed.outbox.emit_warnings(clock) == 0
    [body] = [b for b in bodies(deployed) if b["type"] == "task.warning"]
    assert body["task"]["id"] == walk.task("handle").id and body["task"]["deadline"] == timer.due_at.isoformat()
    assert 0.75 <= body["share_used"] < 0.8 and body["yellow_share"] == 0.7
    # An approved extension moves the deadline: crossing the new yellow line warns again, once.
    handle = walk.task("handle")
    deployed.cases.request_extension(handle.id, 5, "需采购配件", actor="u", role="responsible_unit", clock=clock)
    deployed.cases.decide_extension(handle.id, True, actor="agency", role="grid_agency", clock=clock)
    assert deployed.outbox.emit_warnings(clock) == 0
    [moved] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    clock.set(moved.created_at + (moved.due_at - moved.created_at) * 0.8)
    assert deployed.outbox.emit_warnings(clock) == 1
    assert deployed.outbox.emit_warnings(clock) == 0


# -- delivery -----------------------------------------------------------------------------------------

def test_signed_events_reach_a_local_receiver_in_order(deployed, clock, receiver):
    sub_id, _ = deployed.webhooks.subscribe(receiver.url, SECRET, by="admin")
    walk = Walk(deployed, clock).dispatched(days=2).sign()
    result = deployed.webhooks.pump(clock)
    events = outbox(deployed)
    assert result.routed == len(events) == result.delivered and result.failed == 0
    assert receiver.bad_signatures == 0
    assert receiver.ids() == [e.uid for e in events]
    assert [d["type"] for d in receiver.accepted] == [e.kind for e in events]
    assert all(d["case"]["id"] == walk.id for d in receiver.accepted)
    first = receiver.headers[0]
    assert first["X-GridFlow-Event"] == "case.status_changed" and first["X-GridFlow-Attempt"] == "1"
    assert first["Content-Type"].startswith("application/json")
    assert all(d.state == "delivered" and d.attempts == 1 and d.subscription_id == sub_id
               for d in deliveries(deployed))
    again = deployed.webhooks.pump(clock)
    assert again.attempted == 0 and len(receiver.accepted) == len(events)
    status = deployed.webhooks.status(clock)
    assert (status.pending, status.dead, status.delivered, status.unrouted) == (0, 0, len(events), 0)
    assert status.oldest_pending_age is None


def test_receiver_down_then_up_delivers_everything_after_retries(deployed, clock):
    port = free_port()
    deployed.webhooks.subscribe(f"http://127.0.0.1:{port}/hook", SECRET, by="admin")
    walks = [Walk(deployed, clock).dispatched(days=2) for _ in range(2)]
    events = outbox(deployed)

    down = deployed.webhooks.pump(clock)  # connection refused
    # One delivery per case is due (each case's first); the second case's waits on the first's failure.
    assert down.failed == 1 and down.delivered == 0 and down.deferred == 1
    assert "ConnectionError" in down.errors[0]
    rows = deliveries(deployed)
    assert [d.attempts for d in rows] == [1] + [0] * (len(events) - 1)  # one knock, not one per event
    assert all(d.state == "pending" and d.claim_token is None for d in rows)
    retry_at = rows[0].next_attempt_at
    assert clock.now() + timedelta(seconds=5) <= retry_at <= clock.now() + timedelta(seconds=10)
    assert deployed.webhooks.pump(clock).attempted == 0  # backing off
    status = deployed.webhooks.status(clock)
    assert status.pending == len(events) and status.due == 0 and status.oldest_pending_age is not None

    receiver = Receiver(port=port)
    try:
        receiver.answers = [500]  # up, but failing once more
        clock.set(retry_at + timedelta(seconds=1))
        failing = deployed.webhooks.pump(clock)
        assert failing.failed == 1 and failing.delivered == 0 and "HTTP 500" in failing.errors[0]
        first = deliveries(deployed)[0]
        assert first.attempts == 2 and first.last_status == 500
        assert first.next_attempt_at - clock.now() >= timedelta(seconds=10)  # backoff doubled
        clock.set(first.next_attempt_at + timedelta(seconds=1))
        up = deployed.webhooks.pump(clock)
        assert up.delivered == len(events) and up.failed == 0
        assert sorted(receiver.ids()) == sorted(e.uid for e in events)  # nothing lost, nothing twice
        for walk in walks:  # in order per case
            assert [d["id"] for d in receiver.accepted if d["case"]["id"] == walk.id] == \
                [e.uid for e in events if e.case_id == walk.id]
        assert receiver.headers[0]["X-GridFlow-Attempt"] == "3"
    finally:
        receiver.close()
    assert all(d.state == "delivered" for d in deliveries(deployed))


def test_after_max_attempts_a_delivery_is_dead_until_revived(engine, clock, receiver):
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    hooks = Webhooks(engine.sessions, engine.readers, DeliverySettings(max_attempts=2, backoff_base=1, backoff_cap=1))
    hooks.subscribe(receiver.url, SECRET, ["case.status_changed"], by="admin")
    Walk(engine, clock).dispatched(days=2)
    receiver.answers = [503, 503]
    assert hooks.pump(clock).failed == 1
    clock.advance(seconds=2)
    second = hooks.pump(clock)
    # The first is dead after two attempts; the case's later events no longer wait for it.
    assert second.dead == 1 and second.delivered == 0
    clock.advance(seconds=2)
    later = hooks.pump(clock)
    assert later.delivered == 2 and hooks.status(clock).dead == 1
    [dead] = [d for d in deliveries(engine) if d.state == "dead"]
    assert dead.attempts == 2 and dead.last_status == 503 and "HTTP 503" in dead.last_error
    assert hooks.retry(clock=clock) == 1
    assert hooks.pump(clock).delivered == 1
    assert sorted(receiver.ids()) == sorted(e.uid for e in outbox(engine) if e.kind == "case.status_changed")
    assert hooks.status(clock).dead == 0


def test_a_receiver_that_does_not_answer_in_time_is_a_failure_to_retry(engine, clock, receiver):
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    hooks = Webhooks(engine.sessions, engine.readers, DeliverySettings(read_timeout=0.3))
    hooks.subscribe(receiver.url, SECRET, by="admin")
    Walk(engine, clock)
    receiver.stall = 1.0
    result = hooks.pump(clock)
    assert result.failed == 1 and "ReadTimeout" in result.errors[0]
    receiver.stall = 0.0
    clock.advance(seconds=11)
    assert hooks.pump(clock).delivered == 2  # the receiver may have seen the first: it deduplicates by id


def test_one_receiver_down_does_not_hold_up_another_and_filters_apply(deployed, clock, receiver):
    before = Walk(deployed, clock)  # recorded before the subscriptions: not sent to them
    deployed.webhooks.subscribe(f"http://127.0.0.1:{free_port()}/down", SECRET, by="admin")
    deployed.webhooks.subscribe(receiver.url, SECRET, ["case.status_changed", "case.overdue"], by="admin")
    walk = Walk(deployed, clock).dispatched(days=1)
    result = deployed.webhooks.pump(clock)
    wanted = [e for e in outbox(deployed) if e.case_id == walk.id and e.kind in ("case.status_changed", "case.overdue")]
    assert receiver.ids() == [e.uid for e in wanted] and result.failed == 1
    assert all(d["case"]["id"] != before.id for d in receiver.accepted)
    down, up = deployed.webhooks.subscriptions()
    assert (down.pending, down.delivered, up.pending, up.delivered) == (7, 0, 0, 3)
    assert "ConnectionError" in down.last_error and up.last_error is None
    deployed.webhooks.remove(down.id)
    assert [s.id for s in deployed.webhooks.subscriptions()] == [up.id]
    assert deployed.webhooks.status(clock).pending == 0


def test_prune_deletes_old_delivered_events_and_keeps_the_rest(deployed, clock, receiver):
    deployed.webhooks.subscribe(receiver.url, SECRET, ["case.status_changed"], by="admin")
    walk = Walk(deployed, clock).dispatched(days=3).sign()
    [timer] = [t for t in deployed.timers.pending(walk.id) if t.element_id == "handling_deadline"]
    clock.set(timer.created_at + (timer.due_at - timer.created_at) * 0.8)
    assert deployed.outbox.emit_warnings(clock) == 1
    assert deployed.webhooks.pump(clock).delivered == 4
    with pytest.raises(InvalidCommand, match="at least one day"):
        deployed.webhooks.prune(timedelta(hours=1), clock)
    assert deployed.webhooks.prune(timedelta(days=1), clock) == (0, 0)  # nothing old enough yet
    clock.advance(days=2)
    # Delivered deliveries go, with their events and the events no one subscribed to; the warning of the
    # still open task stays, so it is not sent a second time.
    total = len(outbox(deployed))
    assert deployed.webhooks.prune(timedelta(days=1), clock) == (4, total - 1)
    assert [e.kind for e in outbox(deployed)] == ["task.warning"]
    assert deployed.outbox.emit_warnings(clock) == 0


def test_a_paused_subscription_keeps_its_events_until_resumed(deployed, clock, receiver):
    sub_id, _ = deployed.webhooks.subscribe(receiver.url, SECRET, by="admin")
    deployed.webhooks.set_active(sub_id, False)
    Walk(deployed, clock)
    assert deployed.webhooks.pump(clock).attempted == 0 and deployed.webhooks.status(clock).pending == 2
    deployed.webhooks.set_active(sub_id, True)
    assert deployed.webhooks.pump(clock).delivered == 2


def test_subscriptions_refuse_bad_input(engine):
    hooks = engine.webhooks
    with pytest.raises(InvalidCommand, match="http"):
        hooks.subscribe("ftp://example.org/x", SECRET, by="a")
    with pytest.raises(InvalidCommand, match="16 to 200"):
        hooks.subscribe("https://example.org/x", "short", by="a")
    with pytest.raises(InvalidCommand, match="unknown event kinds task.deleted"):
        hooks.subscribe("https://example.org/x", SECRET, ["task.deleted"], by="a")
    sub_id, secret = hooks.subscribe("https://example.org/x", None, by="a")
    assert len(secret) >= 32 and hooks.subscriptions()[0].secret_hint == secret[:4] + "…"


def test_signature_helper_checks_body_and_age():
    body = b'{"id":"x"}'
    header = sign(SECRET, int(time.time()), body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body + b" ")
    assert not verify("another-secret-0123456789", header, body)
    assert not verify(SECRET, sign(SECRET, int(time.time()) - 3600, body), body)
    assert not verify(SECRET, "garbage", body)


# -- several delivery processes -------------------------------------------------------------------------

def _deliverer(url, barrier, results):
    from engine.clock import SYSTEM_CLOCK
    from engine.service import Engine
    from engine.delivery.webhooks import DeliverySettings, Webhooks

    engine = Engine(url, migrate=False)
    hooks = Webhooks(engine.sessions, engine.readers, DeliverySettings(batch=5))
    barrier.wait()
    delivered, idle = 0, 0
    while idle < 3:
        result = hooks.pump(SYSTEM_CLOCK)
        delivered += result.delivered
        idle = idle + 1 if result.attempted == 0 and result.routed == 0 else 0
        if idle:
            time.sleep(0.2)
    results.put(delivered)
    engine.close()


@pytest.mark.parametrize("db", ["postgresql", "sqlite"])
def test_two_delivery_processes_deliver_each_event_once_in_order_per_case(db, request, tmp_path, receiver):
    url = request.getfixturevalue("pg_url") if db == "postgresql" else f"sqlite:///{tmp_path / 'd.db'}"
    engine = Engine(url)
    clock = FixedClock(T0)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    engine.webhooks.subscribe(receiver.url, SECRET, by="admin")
    cases = [Walk(engine, clock).dispatched(days=2).id for _ in range(12)]
    events = outbox(engine)

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_deliverer, args=(url, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    counts = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)

    assert sum(counts) == len(events) and all(counts), counts  # both took part
    assert receiver.bad_signatures == 0
    assert sorted(receiver.ids()) == sorted(e.uid for e in events)  # each exactly once
    for case_id in cases:
        got = [d["id"] for d in receiver.accepted if d["case"]["id"] == case_id]
        assert got == [e.uid for e in events if e.case_id == case_id]
    engine.close()


# -- the delivery process and the command line --------------------------------------------------------

def test_cli_add_list_status_deliver_retry_remove(tmp_path, receiver):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = Engine(url)
    clock = FixedClock(T0)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, ["--db", url, "webhooks", *args])

    bad = run("add", "not-a-url", "--secret", SECRET)
    assert bad.exit_code == 1 and "is not an http(s) URL" in bad.output and "Traceback" not in bad.output
    unknown = run("add", receiver.url, "--events", "case.deleted")
    assert unknown.exit_code == 2 and "known: case.status_changed" in unknown.output
    added = run("add", receiver.url, "--secret", SECRET, "--events", "case.status_changed,task.created")
    assert added.exit_code == 0 and "subscription 1" in added.output
    made = run("add", f"http://127.0.0.1:{free_port()}/down")
    assert made.exit_code == 0 and "secret: " in made.output
    Walk(engine, clock)
    delivered = run("deliver", "--once")
    assert delivered.exit_code == 0 and "delivered 2, failed 1" in delivered.output, delivered.output
    assert len(receiver.accepted) == 2
    listed = run("list")
    assert receiver.url in listed.output and "case.status_changed,task.created" in listed.output
    assert "ConnectionError" in listed.output
    status = run("status")
    assert "pending deliveries: 2 (0 due now)" in status.output and "dead deliveries: 0" in status.output
    shown = run("deliveries", "--state", "pending")
    assert shown.exit_code == 0 and "task.created" in shown.output
    assert "revived 0 dead deliveries" in run("retry").output
    assert "deleted 0 deliveries and 0 events older than 30 days" in run("prune").output
    assert run("prune", "--days", "0").exit_code == 2
    assert run("remove", "2").exit_code == 0
    missing = run("remove", "2")
    assert missing.exit_code == 1 and "no webhook subscription 2" in missing.output
    assert run("pause", "1").exit_code == 0 and "paused" in run("list").output
    engine.close()


def test_gridflow_webhooks_deliver_runs_until_sigterm(tmp_path, receiver):
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    engine = Engine(url)
    clock = FixedClock(T0)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    engine.webhooks.subscribe(receiver.url, SECRET, by="admin")
    env = {**os.environ, "GRIDFLOW_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "webhooks", "deliver", "--interval", "0.2"],
                            cwd=PROCESSES.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        Walk(engine, clock).dispatched(days=2)  # written while the process runs
        expected = len(outbox(engine))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(receiver.accepted) < expected:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert receiver.ids() == [e.uid for e in outbox(engine)], err
    assert "delivery stopped" in out and proc.returncode == 0 and "Traceback" not in err
    engine.close()


def test_the_timer_worker_emits_warnings_and_delivers(tmp_path, receiver):
    from engine.worker import TimerWorker

    engine = Engine(f"sqlite:///{tmp_path / 'w.db'}")
    clock = FixedClock(T0)  # weeks before today's real time: the deadline below is long past
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    engine.webhooks.subscribe(receiver.url, SECRET, ["case.overdue", "task.overdue"], by="admin")
    Walk(engine, clock).dispatched(days=1)
    said = []
    worker = TimerWorker(engine, report=said.append)
    worker.tick()
    worker.deliver_webhooks()
    assert [d["type"] for d in receiver.accepted] == ["case.overdue", "task.overdue"]
    assert any("webhooks: delivered 2" in line for line in said)
    engine.close()


def test_worker_once_sweeps_then_emits_warnings_and_delivers(tmp_path, receiver):
    url = f"sqlite:///{tmp_path / 'once.db'}"
    engine = Engine(url)
    clock = FixedClock(T0)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    runner = CliRunner()
    assert runner.invoke(main, ["--db", url, "webhooks", "add", receiver.url, "--secret", SECRET,
                                "--events", "case.status_changed"]).exit_code == 0
    Walk(engine, clock)
    once = runner.invoke(main, ["--db", url, "worker", "--once"])
    assert once.exit_code == 0 and "fired timers of 0 cases" in once.output, once.output
    assert "webhooks delivered 1, failed 0" in once.output
    assert len(receiver.accepted) == 1
    engine.close()
