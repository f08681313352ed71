"""Audit: tampering of each kind is found and located, signed checkpoints catch rewritten chains, every demo
case replays equal, later deployments leave replays unchanged, divergences are reported, as-of and dossier."""
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from api.cli.demo import run_demo
from engine.audit import dossier as dossiers
from engine.audit.trail import AuditKeyError, generate_key
from engine.cases.history import EventFields, verify_chain
from engine.store.models import Base, Case, HistoryEvent, RuleTableVersion
from tests.conftest import PROCESSES, grid_matter_upload
from tests.test_cases import Walk


@pytest.fixture
def key(tmp_path, monkeypatch):
    path = tmp_path / "keys" / "audit.key"
    generate_key(path)
    monkeypatch.setenv("GRIDFLOW_AUDIT_KEY_FILE", str(path))
    return path


def _case(engine, clock):
    walk = Walk(engine, clock).dispatched()
    walk.sign().do("handle", result="ok")
    return walk.id


def _sql(engine, statement, **params):
    with engine.db.begin() as conn:
        conn.execute(sa.text(statement), params)


def _rehash(engine, case_id):
    """What someone with database access but not the key can do: recompute every hash of a chain."""
    with engine.sessions() as s, s.begin():
        prev = "0" * 64
        events = s.scalars(sa.select(HistoryEvent).filter_by(case_id=case_id).order_by(HistoryEvent.seq)).all()
        for event in events:
            event.prev_hash = prev
            event.event_hash = prev = EventFields(**{f: getattr(event, f) for f in EventFields.__dataclass_fields__}
                                                  ).digest()
        case = s.get(Case, case_id)
        case.last_seq, case.last_event_hash = events[-1].seq, prev


def _finding(report):
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


def test_an_edited_payload_is_found_and_located(deployed, clock, key):
    case_id = _case(deployed, clock)
    other = _case(deployed, clock)
    _sql(deployed, "UPDATE history_events SET actor = 'someone else' WHERE case_id = :c AND seq = 3", c=case_id)
    found = _finding(deployed.audit.verify())
    assert (found.case_id, found.seq, found.kind) == (case_id, 3, "edited")
    assert deployed.audit.verify(other).intact


def test_deleted_inserted_and_reordered_events_are_found(deployed, clock, key):
    deleted, inserted, swapped = (_case(deployed, clock) for _ in range(3))
    _sql(deployed, "DELETE FROM history_events WHERE case_id = :c AND seq = 2", c=deleted)
    _sql(deployed, "UPDATE history_events SET seq = -(seq + 1) WHERE case_id = :c AND seq >= 4", c=inserted)
    _sql(deployed, "UPDATE history_events SET seq = -seq WHERE case_id = :c AND seq < 0", c=inserted)
    _sql(deployed, "INSERT INTO history_events (case_id, seq, command, actor, role, payload, clock_time, recorded_at, "
                   "definition_id, status_before, status_after, effects, state_hash, prev_hash, event_hash) "
                   "SELECT case_id, 4, command, 'forger', role, payload, clock_time, recorded_at, definition_id, "
                   "status_before, status_after, effects, state_hash, event_hash, event_hash FROM history_events "
                   "WHERE case_id = :c AND seq = 3", c=inserted)
    _sql(deployed, "UPDATE history_events SET seq = -seq WHERE case_id = :c AND seq IN (4, 5)", c=swapped)
    _sql(deployed, "UPDATE history_events SET seq = 9 - (-seq) WHERE case_id = :c AND seq IN (-4, -5)", c=swapped)
    report = deployed.audit.verify()
    located = {f.case_id: (f.seq, f.kind) for f in report.findings}
    assert located[deleted] == (2, "deleted, inserted or reordered")
    assert located[inserted][0] == 4
    assert located[swapped][0] == 4
    assert report.cases == 3 and len(report.findings) == 3


def test_a_truncated_chain_is_found_by_the_case_head(deployed, clock, key):
    case_id = _case(deployed, clock)
    _sql(deployed, "DELETE FROM history_events WHERE case_id = :c AND seq = 6", c=case_id)
    found = _finding(deployed.audit.verify(case_id))
    assert (found.seq, found.kind) == (6, "truncated")


def test_a_chain_rewritten_with_fresh_hashes_is_caught_only_by_the_checkpoint(deployed, clock, key):
    case_id = _case(deployed, clock)
    deployed.audit.checkpoint(by="auditor")
    _sql(deployed, "UPDATE history_events SET payload = :p WHERE case_id = :c AND seq = 3", c=case_id,
         p=json.dumps({"task_id": 2, "element": "accept_report", "data": {"decision": "not_file"}}))
    _rehash(deployed, case_id)
    with deployed.readers() as s:  # the chain itself holds
        assert verify_chain(case_id, s.scalars(sa.select(HistoryEvent).filter_by(case_id=case_id)
                                               .order_by(HistoryEvent.seq)).all()) is None
    found = _finding(deployed.audit.verify(case_id))
    assert (found.case_id, found.seq, found.kind) == (case_id, 6, "rewritten")
    # and truncation with a rewritten head, and a deleted case, against the same checkpoint
    _sql(deployed, "DELETE FROM history_events WHERE case_id = :c AND seq >= 5", c=case_id)
    _rehash(deployed, case_id)
    assert _finding(deployed.audit.verify(case_id)).kind == "truncated"
    existing = set(sa.inspect(deployed.db).get_table_names())
    for table in reversed(Base.metadata.sorted_tables):  # the case and every row that refers to it
        if "case_id" in table.c and table.name in existing:
            _sql(deployed, f"DELETE FROM {table.name} WHERE case_id = :c", c=case_id)
    _sql(deployed, "DELETE FROM cases WHERE id = :c", c=case_id)
    assert _finding(deployed.audit.verify()).kind == "missing"


def test_a_checkpoint_needs_its_key(deployed, clock, key, tmp_path):
    _case(deployed, clock)
    deployed.audit.checkpoint(by="auditor")
    _sql(deployed, "UPDATE audit_checkpoints SET heads = :h", h=json.dumps([[1, 1, "0" * 64]]))
    assert _finding(deployed.audit.verify()).kind == "checkpoint"
    other = tmp_path / "other.key"
    generate_key(other)
    assert "signed with key" in _finding(deployed.audit.verify(key_file=other)).detail
    with pytest.raises(AuditKeyError, match="never overwritten"):
        generate_key(key)
    with pytest.raises(AuditKeyError, match="not found"):
        deployed.audit.checkpoint(by="auditor", key_file=tmp_path / "nowhere.key")


def test_every_demo_case_replays_equal(engine):
    run_demo(engine, PROCESSES, lambda *_: None)
    report = engine.audit.replay_all(processes=1)
    ids = [c.id for c in engine.queries.cases()]   # the matter-list filing and the six matters
    assert (report.cases, report.equal, report.results) == (7, 7, []) and len(ids) == 7
    assert all(engine.audit.replay(i).steps == len(engine.queries.history(i)) for i in ids)


def test_newer_definition_and_calendar_after_start_leave_the_replay_unchanged(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    changed = grid_matter_upload()["grid_matter.bpmn"].replace(b"P7D", b"P9D")
    assert deployed.definitions.deploy({"grid_matter.bpmn": changed}, "admin", clock)[0].version == 2
    deployed.calendars.add_closures([(clock.now() + timedelta(days=1)).date().isoformat()], by="admin")
    walk.sign().do("handle", result="ok")
    result = deployed.audit.replay(walk.id)
    assert result.equal and result.steps == 6
    events = deployed.queries.history(walk.id)
    assert events[3].effects["calendar"] == 1 and {e.definition_id for e in events} == {1}


def test_a_rule_version_not_available_cannot_be_replayed(deployed, clock):
    walk = Walk(deployed, clock, data={"title": "路灯", "grid_code": "410702001001U001",
                                        "sub_category": "road_lighting"})
    walk.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file")
    walk.do("dispatch")  # unit and deadline from the routing and time-limit tables
    assert deployed.audit.replay(walk.id).equal
    _sql(deployed, "UPDATE history_events SET effects = :e WHERE case_id = :c AND seq = 4", c=walk.id,
         e=json.dumps({**deployed.queries.history(walk.id)[3].effects, "time_limits": "1999.1"}))
    result = deployed.audit.replay(walk.id)
    assert result.cannot.startswith("cannot replay: the time-limit table version 1999.1")
    with deployed.sessions() as s:
        assert s.scalar(sa.select(sa.func.count(RuleTableVersion.id))) == 2  # both shipped tables stored


def test_a_divergence_is_reported_with_both_sides(deployed, clock):
    case_id = _case(deployed, clock)
    _sql(deployed, "UPDATE history_events SET payload = :p WHERE case_id = :c AND seq = 2", c=case_id,
         p=json.dumps({"task_id": 1, "element": "verify_register", "data": {"verified": True,
                                                                            "within_authority": True}}))
    result = deployed.audit.replay(case_id)
    d = result.divergence
    assert (d.seq, d.command, result.steps) == (2, "complete", 1)
    assert d.recorded["status"] == "escalated" and d.replayed["status"] == "self_handling"
    assert "state hash differs" in d.reason
    _sql(deployed, "UPDATE history_events SET command = 'teleport' WHERE case_id = :c AND seq = 2", c=case_id)
    assert "unknown command 'teleport'" in deployed.audit.replay(case_id).divergence.reason


def test_as_of_shows_the_case_as_it_was(deployed, clock):
    walk = Walk(deployed, clock, data={"title": "路灯", "grid_code": "410702001001U001",
                                        "reporter": {"name": "李秀英", "phone": "13800000001"}}).dispatched()
    dispatched_at = clock.now()
    clock.advance(minutes=30)
    walk.sign().do("handle", result="ok")
    view = deployed.audit.as_of(walk.id, dispatched_at + timedelta(minutes=1))
    assert view.status == "dispatched" and view.last_seq == 4
    assert [(t["element"], t["state"]) for t in view.open_tasks] == [("handle", "offered")]
    assert view.deadlines[0]["element"] == "handling_deadline" and not view.deadlines[0]["passed"]
    assert view.data["reporter"] != {"name": "李秀英", "phone": "13800000001"}
    assert deployed.audit.as_of(walk.id, dispatched_at, reveal=True).data["reporter"]["name"] == "李秀英"
    assert deployed.audit.as_of(walk.id, clock.now()).status == "verifying"


def test_the_dossier_is_escaped_and_complete(deployed, clock):
    walk = Walk(deployed, clock, data={"title": "<script>alert(1)</script>", "grid_code": "410702001001U001"})
    walk.dispatched().give_back("不属本单位 <b>职责</b>")
    data = deployed.audit.dossier(walk.id, deployed.queries)
    assert data["chain"]["intact"] and data["replay"]["equal"]
    assert [s["command"] for s in data["steps"]] == ["start", "complete", "complete", "complete", "return"]
    assert data["steps"][4]["explanations"] == {"reason": "不属本单位 <b>职责</b>"}
    assert data["steps"][4]["deadlines"][0]["standing"].startswith("on time")
    page = dossiers.to_html(data)
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;职责" in page


def test_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'g.db'}"
    assert runner.invoke(main, ["--db", db, "demo"]).exit_code == 0
    keyfile = tmp_path / "k" / "audit.key"
    assert runner.invoke(main, ["audit", "keygen", "--out", str(keyfile)]).exit_code == 0
    monkeypatch.setenv("GRIDFLOW_AUDIT_KEY_FILE", str(keyfile))
    # Case 1 is the county's matter list filed by the demo; cases 2–7 are its matters (5: the overdue one).
    assert "7 case heads signed" in runner.invoke(main, ["--db", db, "audit", "checkpoint"]).output
    assert re.search(r"7 cases, \d+ events: intact", runner.invoke(main, ["--db", db, "audit", "verify"]).output)
    out = runner.invoke(main, ["--db", db, "audit", "replay", "--all", "--processes", "1"])
    assert "7 equal" in out.output and out.exit_code == 0
    out = runner.invoke(main, ["--db", db, "audit", "as-of", "5", "2026-11-18T11:00"])
    assert "status in_progress" in out.output
    assert runner.invoke(main, ["--db", db, "audit", "dossier", "3", "--html", "d.html"]).exit_code == 0
    assert "案卷" in Path("d.html").read_text(encoding="utf-8")
    out = runner.invoke(main, ["--db", db, "audit", "as-of", "4", "yesterday"])
    assert out.exit_code == 2 and "not a date-time" in out.output
    out = runner.invoke(main, ["--db", db, "audit", "replay", "99"])
    assert out.exit_code == 1 and "no case 99" in out.output
    _sql_url(db, "UPDATE history_events SET actor = 'x' WHERE case_id = 4 AND seq = 9")
    out = runner.invoke(main, ["--db", db, "audit", "verify"])
    assert out.exit_code == 3 and "edited" in out.output


def _sql_url(url, statement):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


def test_the_worker_signs_checkpoints_and_drops_old_idempotency_records_each_hour(deployed, clock, tmp_path,
                                                                                 monkeypatch):
    from engine.clock import FixedClock
    from engine.worker import IDEMPOTENCY_RETENTION, TimerWorker

    Walk(deployed, clock).dispatched()
    store = deployed.idempotency
    old = FixedClock(clock.now() - IDEMPOTENCY_RETENTION - timedelta(days=1))
    assert store.claim("grid_worker:w", "old-1", "f" * 64, clock=old) is None
    store.finish("grid_worker:w", "old-1", 201, "{}", clock=old)
    assert store.claim("grid_worker:w", "new-1", "f" * 64) is None
    store.finish("grid_worker:w", "new-1", 201, "{}")
    lines = []
    worker = TimerWorker(deployed, report=lines.append)
    worker.housekeeping()   # no key configured: no checkpoint, and no error either
    assert deployed.audit.checkpoints() == []
    assert "dropped 1 records" in " ".join(lines)
    key = tmp_path / "audit.key"
    generate_key(key)
    monkeypatch.setenv("GRIDFLOW_AUDIT_KEY_FILE", str(key))
    worker.housekeeping()
    (checkpoint,) = deployed.audit.checkpoints()
    assert checkpoint.case_count == 1 and checkpoint.created_by == worker.name
    assert deployed.audit.verify(key_file=key).intact
