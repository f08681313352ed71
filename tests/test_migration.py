"""Instance migration: each refusal reason, bulk moves on both databases, renamed elements, re-armed timers
and the timer index, re-checks of cases that moved since the plan, revert, replay across a migration,
concurrent commands (PostgreSQL threads), the CLI and the HTTP resource."""
import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from engine.errors import Conflict, InvalidCommand, NotFound
from engine.execution.spiff import SERIALIZER
from engine.deadlines.timers import waiting_timers
from engine.store.models import Case, CaseMigration, HistoryEvent, HumanTask, Timer
from tests.conftest import PROCESSES, T0
from tests.conftest import registered
from tests.test_cases import Walk

BASE = (PROCESSES / "grid_matter.bpmn").read_text()
HANDLE_FORM = 'value="result:str, final?:bool"'
VERIFY_FORM = 'value="verified:bool, within_authority:bool, reason?:str, sub_category?:str"'
DEADLINE = '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">handling_due</bpmn:timeDate>'


def variant(*edits) -> str:
    text = BASE
    for old, new in edits:
        assert re.search(old, text, flags=re.S), old
        text = re.sub(old, new, text, flags=re.S)
    return text


def rename(element: str, new: str):
    return [(f'"{element}"', f'"{new}"'), (f">{element}<", f">{new}<")]


# Versions of grid_matter, each a change an administrator might deploy.
LONGER_DEADLINE = variant((re.escape(DEADLINE), DEADLINE.replace(">handling_due<", ">add_days(handling_due, 1)<")))
OPTIONAL_FIELD = variant((re.escape(VERIFY_FORM), VERIFY_FORM[:-1] + ', photo?:str"'))
REQUIRED_FIELD = variant((re.escape(VERIFY_FORM), VERIFY_FORM[:-1] + ', photo:str"'))
TIMER_KIND = variant((re.escape(DEADLINE),
                      '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P3D"</bpmn:timeDuration>'))
MESSAGE_GONE = variant(('<bpmn:message id="Message_unit_feedback" name="unit_feedback" />',
                        '<bpmn:message id="Message_unit_feedback" name="unit_report" />'))
LANE_MOVED = variant(('(<bpmn:lane id="Lane_grid_agency".*?)<bpmn:flowNodeRef>accept_report</bpmn:flowNodeRef>',
                      r"\1"),
                     ('(<bpmn:lane id="Lane_grid_worker"[^>]*>)', r"\1<bpmn:flowNodeRef>accept_report</bpmn:flowNodeRef>"))
HANDLE_RENAMED = variant(*rename("handle", "handle_matter"))
FOLLOW_UP_LONGER = variant(('<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P7D"</bpmn:timeDuration>',
                             '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P14D"</bpmn:timeDuration>'))
PREPARE_REMOVED = variant(   # a script step every case passed through, right after the start
    ('<bpmn:scriptTask id="prepare_matter".*?</bpmn:scriptTask>', ""),
    ("<bpmn:flowNodeRef>prepare_matter</bpmn:flowNodeRef>", ""),
    ('<bpmn:sequenceFlow id="Flow_prepare_verify"[^>]*/>', ""),
    ('targetRef="prepare_matter"', 'targetRef="verify_register"'),
    ("<bpmn:incoming>Flow_prepare_verify</bpmn:incoming>", "<bpmn:incoming>Flow_reported_prepare</bpmn:incoming>"),
    ('<bpmndi:BPMNShape id="prepare_matter_di".*?</bpmndi:BPMNShape>', ""),
    ('<bpmndi:BPMNEdge id="Flow_prepare_verify_di".*?</bpmndi:BPMNEdge>', ""))
FEEDBACK_REMOVED = variant(   # the unit system's feedback message on the handling task
    ('<bpmn:boundaryEvent id="feedback_from_unit_system".*?</bpmn:boundaryEvent>', ""),
    ("<bpmn:flowNodeRef>feedback_from_unit_system</bpmn:flowNodeRef>", ""),
    ('<bpmn:sequenceFlow id="Flow_unit_feedback"[^>]*/>', ""),
    ("<bpmn:incoming>Flow_unit_feedback</bpmn:incoming>", ""),
    ('<bpmndi:BPMNShape id="feedback_from_unit_system_di".*?</bpmndi:BPMNShape>', ""),
    ('<bpmndi:BPMNEdge id="Flow_unit_feedback_di".*?</bpmndi:BPMNEdge>', ""))


def deploy(engine, text, clock) -> int:
    outcome, = engine.definitions.deploy({"grid_matter.bpmn": text.encode()}, "admin", clock)
    assert outcome.created
    return outcome.version


@pytest.fixture
def sqlite_engine(tmp_path):
    from engine.service import Engine
    eng = Engine(f"sqlite:///{tmp_path / 'm.db'}")
    yield eng
    eng.close()


@pytest.fixture
def v1(sqlite_engine, clock):
    registered(sqlite_engine, clock)
    deploy(sqlite_engine, BASE, clock)
    return sqlite_engine


def verdict_of(plan, case_id):
    return next(v for v in plan.verdicts if v.case_id == case_id)


def codes(plan, case_id):
    return [r.code for r in verdict_of(plan, case_id).reasons]


def reported(engine, clock):
    return Walk(engine, clock, version=1)


def dispatched(engine, clock):
    return Walk(engine, clock, version=1).dispatched()


def filed(engine, clock):
    """At the agency's acceptance: past matter_registered."""
    return Walk(engine, clock, version=1).do("verify_register", verified=True, within_authority=False)


def closed(engine, clock):
    """Closed, waiting for the resident's follow-up or the end of its window (an event-based gateway)."""
    return dispatched(engine, clock).sign().do("handle", result="ok").do("check_result", passed=True) \
        .do("close_case")


# ---- verdicts: each reason --------------------------------------------------------------------------

@pytest.mark.parametrize("text, make, code, element, fine", [
    (REQUIRED_FIELD, reported, "form_changed", "verify_register", dispatched),
    (TIMER_KIND, dispatched, "timer_changed", "handling_deadline", reported),
    (MESSAGE_GONE, dispatched, "message_removed", "feedback_from_unit_system", reported),
    (LANE_MOVED, filed, "element_changed", "accept_report", reported),
    (HANDLE_RENAMED, dispatched, "element_removed", "handle", reported),
    (FEEDBACK_REMOVED, dispatched, "element_removed", "feedback_from_unit_system", filed),
    (FOLLOW_UP_LONGER, closed, "timer_changed", "gw_follow_up", dispatched),
    # every case passed it: there is no case to move
    (PREPARE_REMOVED, filed, "passed_element_removed", "prepare_matter", None),
])
def test_each_refusal_reason_is_given_with_its_element_in_both_languages(v1, clock, text, make, code, element,
                                                                          fine):
    walk = make(v1, clock)
    untouched = fine(v1, clock) if fine is not None else None
    deploy(v1, text, clock)
    plan = v1.migrations.plan("grid_matter", 1, 2, clock=clock)
    verdict = verdict_of(plan, walk.id)
    assert not verdict.migratable and [(r.code, r.element) for r in verdict.reasons] == [(code, element)]
    assert verdict.reasons[0].zh and verdict.reasons[0].en and element in verdict.reasons[0].en
    if untouched is not None:
        assert verdict_of(plan, untouched.id).migratable, verdict_of(plan, untouched.id).reasons
    # The run refuses the same cases for the same reasons, and writes nothing for them.
    before = len(v1.queries.history(walk.id))
    run = v1.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock)
    assert verdict_of(run, walk.id).outcome == "refused" and codes(run, walk.id) == [code]
    if untouched is not None:
        assert verdict_of(run, untouched.id).outcome == "migrated"
        assert v1.audit.replay(untouched.id).equal
    assert len(v1.queries.history(walk.id)) == before
    with v1.readers() as s:
        assert s.get(Case, walk.id).definition_id == v1.definitions.find("grid_matter", 1).id


def test_a_due_timer_and_an_extended_deadline_are_refused(v1, clock):
    due = dispatched(v1, clock)
    extended = dispatched(v1, clock)
    extended.sign()
    task = extended.task("handle")
    v1.cases.request_extension(task.id, 2, "需协调", actor="unit", role="responsible_unit", clock=clock)
    v1.cases.decide_extension(task.id, True, actor="agency", role="grid_agency", clock=clock)
    deploy(v1, LONGER_DEADLINE, clock)
    later = type(clock)(clock.now() + timedelta(days=30))
    plan = v1.migrations.plan("grid_matter", 1, 2, clock=later, case_ids=[due.id])
    assert codes(plan, due.id) == ["timer_due"]
    plan = v1.migrations.plan("grid_matter", 1, 2, clock=clock)
    assert codes(plan, extended.id) == ["timer_changed"] and "extended" in verdict_of(plan, extended.id).reasons[0].en


def test_an_optional_form_field_and_properties_only_note_what_changes(v1, clock):
    walk = reported(v1, clock)
    deploy(v1, OPTIONAL_FIELD, clock)
    verdict = verdict_of(v1.migrations.plan("grid_matter", 1, 2, clock=clock), walk.id)
    assert verdict.migratable and [n.kind for n in verdict.notes] == ["property"]


def test_bad_requests_are_refused_clearly(v1, clock):
    deploy(v1, LONGER_DEADLINE, clock)
    with pytest.raises(InvalidCommand, match="both version 1"):
        v1.migrations.plan("grid_matter", 1, 1)
    with pytest.raises(NotFound, match="version 9"):
        v1.migrations.plan("grid_matter", 1, 9)
    with pytest.raises(InvalidCommand, match="version 1 has no element nope"):
        v1.migrations.plan("grid_matter", 1, 2, ["nope=handle"])
    with pytest.raises(InvalidCommand, match="OLD_ID=NEW_ID"):
        v1.migrations.plan("grid_matter", 1, 2, ["handle"])


# ---- moving cases --------------------------------------------------------------------------------------

def _pending_index(engine, case_id):
    with engine.readers() as s:
        rows = {(r.spiff_task_id, r.element_id, r.due_at.isoformat()) for r in
                s.scalars(sa.select(Timer).where(Timer.case_id == case_id, Timer.state == "pending"))}
        case = s.get(Case, case_id)
        loaded = engine.definitions.load(case.definition_id)
        workflow = SERIALIZER.loads(case.state, loaded.spec, loaded.subprocess_specs, None)
        held = {(tid, due) for tid, due in case.pending_timers.items()}
    in_workflow = {(t.spiff_task_id, t.element_id, t.due_at.isoformat()) for t in waiting_timers(workflow)}
    assert rows == in_workflow and {(r[0], r[2]) for r in rows} == held
    return rows


def _task_rows(engine, case_id):
    with engine.readers() as s:
        return [(t.id, t.spiff_task_id, t.element_id, t.role, t.unit, t.state, t.created_at) for t in
                s.scalars(sa.select(HumanTask).where(HumanTask.case_id == case_id).order_by(HumanTask.id))]


def test_bulk_migration_keeps_tasks_rearms_changed_timers_and_replays(deployed, clock):
    engine = deployed
    walks = [reported(engine, clock), dispatched(engine, clock), dispatched(engine, clock).sign(),
             filed(engine, clock)]
    closed = dispatched(engine, clock).sign().do("handle", result="ok").do("check_result", passed=True) \
        .do("close_case")   # waits on the follow-up window timer (an event-based gateway, unchanged)
    walks.append(closed)
    tasks_before = {w.id: _task_rows(engine, w.id) for w in walks}
    timers_before = {w.id: _pending_index(engine, w.id) for w in walks}
    deploy(engine, LONGER_DEADLINE, clock)
    clock.advance(hours=1)
    plan = engine.migrations.plan("grid_matter", 1, 2, clock=clock)
    assert plan.counts()["migratable"] == len(walks)
    run = engine.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock, plan=plan)
    assert run.counts()["migrated"] == len(walks) and run.counts()["rechecked"] == 0
    v2 = engine.definitions.find("grid_matter", 2)
    for walk in walks:
        assert _task_rows(engine, walk.id) == tasks_before[walk.id]       # ids, assignees, states, times
        after = _pending_index(engine, walk.id)
        event = engine.queries.history(walk.id)[-1]
        assert event.command == "migrated" and event.definition_id == v2.id
        assert (event.payload["from"]["version"], event.payload["to"]["version"]) == (1, 2)
        assert event.payload["to"]["content_hash"] == v2.content_hash
        rearmed = event.effects["migration"]["rearmed"]
        if any(e == "handling_deadline" for _, e, _ in timers_before[walk.id]):
            (old_due,) = [d for _, e, d in timers_before[walk.id] if e == "handling_deadline"]
            (new_due,) = [d for _, e, d in after if e == "handling_deadline"]
            # counted from when it was armed: one day more than before, not a day from the migration
            assert rearmed == [["handling_deadline", old_due, new_due]]
            assert new_due == (T0.fromisoformat(old_due) + timedelta(days=1)).isoformat()
            assert ["handling_deadline", new_due, "moved"] in event.effects["timers"]
        else:
            assert rearmed == [] and after == timers_before[walk.id]
        assert engine.audit.replay(walk.id).equal
    assert engine.audit.verify().intact
    # A second run picks up only what is left: nothing.
    assert engine.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock).verdicts == []
    # The migrated cases go on under version 2.
    walks[2].do("handle", result="修好了")
    assert walks[2].view.status == "verifying" and engine.audit.replay(walks[2].id).equal
    # One case row each: counted once, on its new version.
    with engine.readers() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Case)) == len(walks)
        assert s.scalar(sa.select(sa.func.count()).select_from(Case).where(Case.definition_id == v2.id)) == \
            len(walks)


def test_a_renamed_element_moves_with_an_explicit_mapping(v1, clock):
    walk = dispatched(v1, clock)
    handle_before = walk.task("handle")
    deploy(v1, HANDLE_RENAMED, clock)
    assert codes(v1.migrations.plan("grid_matter", 1, 2, clock=clock), walk.id) == ["element_removed"]
    run = v1.migrations.run("grid_matter", 1, 2, ["handle=handle_matter"], actor="admin", clock=clock)
    assert verdict_of(run, walk.id).outcome == "migrated"
    task = next(t for t in v1.queries.tasks(case_id=walk.id))
    assert (task.id, task.element_id, task.unit, task.state) == (handle_before.id, "handle_matter",
                                                                 handle_before.unit, "offered")
    assert {e for _, e, _ in _pending_index(v1, walk.id)} == {"handling_deadline"}
    v1.cases.sign_for(task.id, actor="unit", role="responsible_unit", clock=clock)
    v1.cases.complete_task(task.id, {"result": "ok"}, actor="unit", role="responsible_unit", clock=clock)
    assert walk.view.status == "verifying" and v1.audit.replay(walk.id).equal


def test_a_removed_element_is_fine_ahead_of_the_token_and_dropped_when_it_ended_a_branch(v1, clock):
    ahead = reported(v1, clock)                                   # the boundary event is only predicted here
    behind = dispatched(v1, clock).sign().do("handle", result="ok")   # it was cancelled when handle completed
    deploy(v1, FEEDBACK_REMOVED, clock)
    plan = v1.migrations.plan("grid_matter", 1, 2, clock=clock)
    assert verdict_of(plan, ahead.id).migratable
    assert [(n.kind, n.element) for n in verdict_of(plan, behind.id).notes] == [
        ("dropped", "feedback_from_unit_system")]
    run = v1.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock)
    assert {v.outcome for v in run.verdicts} == {"migrated"}
    assert v1.queries.history(behind.id)[-1].effects["migration"]["dropped"] == ["feedback_from_unit_system"]
    behind.do("check_result", passed=True).do("close_case")
    ahead.do("verify_register", verified=True, within_authority=False).do("accept_report", decision="file") \
        .do("dispatch", unit="路灯所", handling_days=3).sign().do("handle", result="ok")
    assert (ahead.view.status, behind.view.status) == ("verifying", "closed")
    assert v1.audit.replay(ahead.id).equal and v1.audit.replay(behind.id).equal


def test_a_case_that_moved_since_the_plan_is_rechecked(v1, clock):
    walk = filed(v1, clock).do("accept_report", decision="file")
    other = reported(v1, clock)
    deploy(v1, FEEDBACK_REMOVED, clock)
    plan = v1.migrations.plan("grid_matter", 1, 2, clock=clock)
    assert verdict_of(plan, walk.id).migratable
    walk.do("dispatch", unit="路灯所", handling_days=3)   # now waiting on the removed boundary event
    run = v1.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock, plan=plan)
    moved = verdict_of(run, walk.id)
    assert moved.rechecked and moved.outcome == "refused" and codes(run, walk.id) == ["element_removed"]
    assert verdict_of(run, other.id).outcome == "migrated" and not verdict_of(run, other.id).rechecked


def test_revert_puts_the_case_back_exactly_while_it_has_not_moved(v1, clock):
    walk = dispatched(v1, clock)
    stuck = dispatched(v1, clock)
    with v1.readers() as s:
        before = {c.id: (c.state_hash, dict(c.pending_timers), c.definition_id) for c in s.scalars(sa.select(Case))}
    timers = _pending_index(v1, walk.id)
    deploy(v1, LONGER_DEADLINE, clock)
    v1.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock)
    assert _pending_index(v1, walk.id) != timers
    done = v1.migrations.revert(walk.id, actor="admin", clock=clock)
    assert (done["from"]["version"], done["to"]["version"]) == (2, 1)
    with v1.readers() as s:
        case = s.get(Case, walk.id)
        assert (case.state_hash, dict(case.pending_timers), case.definition_id) == before[walk.id]
        row = s.scalars(sa.select(CaseMigration).where(CaseMigration.case_id == walk.id)).one()
        assert row.reverted_seq == case.last_seq
    assert _pending_index(v1, walk.id) == timers
    event = v1.queries.history(walk.id)[-1]
    assert event.command == "migration_reverted" and event.payload["of_seq"] == row.seq
    assert v1.audit.replay(walk.id).equal and v1.audit.verify().intact
    with pytest.raises(InvalidCommand, match="no migration to revert"):
        v1.migrations.revert(walk.id, actor="admin", clock=clock)
    stuck.sign()
    with pytest.raises(InvalidCommand, match="moved on since its migration"):
        v1.migrations.revert(stuck.id, actor="admin", clock=clock)
    # The reverted case migrates again, and the replay follows it there and back and there.
    v1.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock, case_ids=[walk.id])
    walk.sign().do("handle", result="ok")
    assert v1.audit.replay(walk.id).equal


# ---- concurrency --------------------------------------------------------------------------------------

def test_migrate_and_complete_at_once_exactly_one_wins(pg_url, clock):
    """Threads on PostgreSQL: a migration and a completion of the same case race; one of them is applied
    whole and the other reports a conflict (or, for the migration, finds the case moved on)."""
    from engine.service import Engine
    engine = Engine(pg_url)
    try:
        registered(engine, clock)
        deploy(engine, BASE, clock)
        walks = [reported(engine, clock) for _ in range(12)]
        deploy(engine, OPTIONAL_FIELD, clock)
        alignment = engine.migrations._alignment("grid_matter", 1, 2, [])
        results = {}
        for walk in walks:
            task = walk.task("verify_register")
            barrier = threading.Barrier(2)
            outcome = {}

            def complete():
                barrier.wait()
                try:
                    engine.cases.complete_task(task.id, {"verified": True, "within_authority": True}, actor="w",
                                               role="grid_worker", clock=clock)
                    outcome["complete"] = "ok"
                except Conflict:
                    outcome["complete"] = "conflict"

            def migrate():
                barrier.wait()
                outcome["migrate"] = engine.migrations.migrate_case(walk.id, alignment, actor="admin",
                                                                    role="process_admin", clock=clock).outcome

            threads = [threading.Thread(target=complete), threading.Thread(target=migrate)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            results[walk.id] = outcome
            assert outcome["migrate"] in ("migrated", "conflict") and outcome["complete"] in ("ok", "conflict")
            history = [e.command for e in engine.queries.history(walk.id)]
            won = ("complete" if outcome["complete"] == "ok" else None, "migrate" if outcome["migrate"] == "migrated"
                   else None)
            assert sum(x is not None for x in won) >= 1, outcome
            # Both may apply only one after the other (the second on the first's result): never half.
            assert history[0] == "start" and set(history[1:]) <= {"complete", "migrated"}
            assert history.count("migrated") == (outcome["migrate"] == "migrated")
            assert history.count("complete") == (outcome["complete"] == "ok")
            with engine.readers() as s:
                case = s.get(Case, walk.id)
                on_v2 = case.definition_id == engine.definitions.find("grid_matter", 2).id
            assert on_v2 == (outcome["migrate"] == "migrated")
            assert engine.audit.replay(walk.id).equal
        assert engine.audit.verify().intact
        # Whatever was left on version 1 and still migratable moves on a second run.
        engine.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock)
        assert all(v.outcome != "migrated" or v.migratable for v in
                   engine.migrations.plan("grid_matter", 1, 2, clock=clock).verdicts)
    finally:
        engine.close()


# ---- CLI and HTTP -------------------------------------------------------------------------------------

def test_cli_db_upgrade_plan_run_revert(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(main, ["--db", db, *args], catch_exceptions=False)

    assert "schema is current" in cli("db", "upgrade").output
    hint = cli("migrate")
    assert hint.exit_code == 2 and "gridflow db upgrade" in hint.output
    (tmp_path / "v2.bpmn").write_text(REQUIRED_FIELD)
    (tmp_path / "v1.bpmn").write_text(BASE)
    cli("registry", "sample")
    cli("deploy", str(tmp_path / "v1.bpmn"))
    cli("case", "start", "grid_matter", "--data", '{"title": "路灯", "grid_code": "410702001001U001"}')
    cli("deploy", str(tmp_path / "v2.bpmn"))
    planned = cli("migrate", "plan", "grid_matter", "--from", "1", "--to", "2")
    assert "form_changed 1" in planned.output and "0 migratable, 1 refused" in planned.output
    bad = cli("migrate", "run", "grid_matter", "--from", "1", "--to", "7")
    assert bad.exit_code == 1 and "version 7" in bad.output
    (tmp_path / "v3.bpmn").write_text(OPTIONAL_FIELD)
    cli("deploy", str(tmp_path / "v3.bpmn"))
    moved = cli("migrate", "run", "grid_matter", "--from", "1", "--to", "3", "--json")
    assert '"migrated": 1' in moved.output
    assert "back on grid_matter version 1" in cli("migrate", "revert", "1").output
    again = cli("migrate", "revert", "1")
    assert again.exit_code == 1 and "no migration to revert" in again.output


def test_http_dry_run_run_and_revert(v1, clock):
    from tests.api_fixtures import make_api
    walk = dispatched(v1, clock)
    api = make_api(v1, clock)   # deploys the unchanged file again: still version 1
    deploy(v1, LONGER_DEADLINE, clock)
    path = "/definitions/grid_matter/migrations"
    assert api.call("post", path, "worker", {"from": 1, "to": 2}).status_code == 403
    bad = api.call("post", path, "admin", {"from": 1, "to": 2, "mapping": {"nope": "handle"}})
    assert bad.status_code == 422 and bad.json["error"]["message"]["zh"] and "nope" in \
        bad.json["error"]["message"]["en"]
    assert api.call("post", path, "admin", {"from": "x"}).status_code == 422
    dry = api.call("post", path, "admin", {"from": 1, "to": 2})
    assert dry.status_code == 200 and dry.json["dry_run"] and dry.json["counts"]["migratable"] == 1
    assert dry.json["cases"][0]["notes"][0]["kind"] == "rearm"
    done = api.call("post", path, "admin", {"from": 1, "to": 2, "dry_run": False})
    assert done.status_code == 200 and done.json["cases"][0]["outcome"] == "migrated"
    assert done.json["to"]["version"] == 2
    back = api.call("post", path + "/revert", "admin", {"case_id": walk.id})
    assert back.status_code == 200 and back.json["to"]["version"] == 1
    assert api.call("post", "/definitions/other/migrations/revert", "admin", {"case_id": walk.id}).status_code == 404


def test_a_new_timer_expression_that_fails_on_the_case_is_refused_at_run_and_nothing_changes(v1, clock):
    walk = dispatched(v1, clock)
    with v1.readers() as s:
        before = (s.get(Case, walk.id).state, s.get(Case, walk.id).revision)
    timers = _pending_index(v1, walk.id)
    deploy(v1, variant((re.escape(DEADLINE), DEADLINE.replace(">handling_due<", ">add_days(no_such_field, 1)<"))),
           clock)
    plan = v1.migrations.plan("grid_matter", 1, 2, clock=clock)
    assert verdict_of(plan, walk.id).migratable     # the dry run reads states; it does not evaluate
    run = v1.migrations.run("grid_matter", 1, 2, actor="admin", clock=clock, plan=plan)
    verdict = verdict_of(run, walk.id)
    assert verdict.outcome == "refused" and codes(run, walk.id) == ["timer_changed"]
    assert "new expression fails" in verdict.reasons[0].en
    with v1.readers() as s:
        assert (s.get(Case, walk.id).state, s.get(Case, walk.id).revision) == before
        assert s.scalar(sa.select(sa.func.count()).select_from(CaseMigration)) == 0
    assert _pending_index(v1, walk.id) == timers and v1.queries.history(walk.id)[-1].command != "migrated"
    walk.sign()   # the case goes on under version 1, its cached instance untouched by the failed move
    assert v1.audit.replay(walk.id).equal


SUBPROCESS = """<bpmn:subProcess id="sp" name="Sub">
      <bpmn:startEvent id="s2"/><bpmn:userTask id="t1" name="{name}"/><bpmn:endEvent id="e2"/>
      <bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="t1"/><bpmn:sequenceFlow id="g2" sourceRef="t1" targetRef="e2"/>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sp"/>
    <bpmn:sequenceFlow id="f2" sourceRef="sp" targetRef="end"/>"""
SUBPROCESS_LANES = """<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="网格员 (grid_worker)">
  <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>sp</bpmn:flowNodeRef><bpmn:flowNodeRef>t1</bpmn:flowNodeRef>
  <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"""


def test_a_case_inside_a_subprocess_is_refused_in_plan_and_run(sqlite_engine, clock):
    from tests.test_definitions import tiny
    engine = sqlite_engine
    registered(engine, clock)
    for name in ("A", "B"):
        engine.definitions.deploy({"s.bpmn": tiny(SUBPROCESS.format(name=name), "subby", SUBPROCESS_LANES)},
                                  "admin", clock)
    case_id = engine.cases.start("subby", {"title": "x", "grid_code": "410702001001U001"}, actor="w", role="grid_worker", clock=clock, version=1)
    assert codes(engine.migrations.plan("subby", 1, 2, clock=clock), case_id) == ["subprocess"]
    run = engine.migrations.run("subby", 1, 2, actor="admin", clock=clock)
    assert verdict_of(run, case_id).outcome == "refused" and codes(run, case_id) == ["subprocess"]
