"""Every command leaves one hash-chained event; edits, deletions, insertions and reorderings show."""
import sqlalchemy as sa

from engine.cases.history import GENESIS, verify_chain
from engine.store.models import HistoryEvent
from tests.test_cases import Walk


def _events(engine, case_id):
    with engine.sessions() as s:
        return s.scalars(sa.select(HistoryEvent).where(HistoryEvent.case_id == case_id)
                         .order_by(HistoryEvent.seq)).all()


def _case(deployed, clock):
    walk = Walk(deployed, clock).dispatched()
    walk.sign().do("handle", result="ok")
    return walk


def test_each_command_is_recorded_with_what_a_replay_needs(deployed, clock):
    walk = _case(deployed, clock)
    events = deployed.queries.history(walk.id)
    assert [e.command for e in events] == ["start", "complete", "complete", "complete", "sign_for", "complete"]
    first = events[0]
    assert first.payload["key"] == "grid_matter" and first.payload["version"] == 1
    assert first.payload["data"]["title"] == "路灯损坏"
    assert first.prev_hash == GENESIS and first.clock_time.tzinfo is not None
    dispatch = events[3]
    assert dispatch.payload["data"] == {"unit": "路灯所", "handling_days": 3}
    assert dispatch.payload["element"] == "dispatch" and dispatch.role == "grid_agency"
    assert dispatch.effects["status"] == [["escalated", "dispatched", "dispatch", "handle"]]
    assert all(e.definition_id == first.definition_id for e in events)
    assert all(b.prev_hash == a.event_hash for a, b in zip(events, events[1:]))
    assert [e.clock_time for e in events] == sorted(e.clock_time for e in events)
    assert verify_chain(walk.id, _events(deployed, walk.id)) is None


def test_state_hash_follows_the_state(deployed, clock):
    walk = _case(deployed, clock)
    hashes = [e.state_hash for e in deployed.queries.history(walk.id)]
    assert len(set(hashes)) == len(hashes)


def test_an_edited_event_is_found(deployed, clock):
    walk = _case(deployed, clock)
    with deployed.sessions() as s, s.begin():
        event = s.scalars(sa.select(HistoryEvent).filter_by(case_id=walk.id, seq=3)).one()
        event.payload = {**event.payload, "data": {"decision": "not_file"}}
    broken = verify_chain(walk.id, _events(deployed, walk.id))
    assert broken.seq == 3 and "edited" in broken.reason


def test_a_deleted_event_is_found(deployed, clock):
    walk = _case(deployed, clock)
    with deployed.sessions() as s, s.begin():
        s.execute(sa.delete(HistoryEvent).where(HistoryEvent.case_id == walk.id, HistoryEvent.seq == 2))
    broken = verify_chain(walk.id, _events(deployed, walk.id))
    assert broken.seq == 2 and "deleted" in broken.reason


def test_reordered_events_are_found(deployed, clock):
    walk = _case(deployed, clock)
    with deployed.sessions() as s, s.begin():
        a = s.scalars(sa.select(HistoryEvent).filter_by(case_id=walk.id, seq=4)).one()
        b = s.scalars(sa.select(HistoryEvent).filter_by(case_id=walk.id, seq=5)).one()
        a.seq, b.seq = -1, 4
        s.flush()
        a.seq = 5
    broken = verify_chain(walk.id, _events(deployed, walk.id))
    assert broken.seq == 4


def test_an_inserted_event_is_found(deployed, clock):
    walk = _case(deployed, clock)
    with deployed.sessions() as s, s.begin():
        events = s.scalars(sa.select(HistoryEvent).filter_by(case_id=walk.id).order_by(HistoryEvent.seq)).all()
        for event in reversed(events[2:]):
            event.seq += 1
            s.flush()
        forged = events[1]
        s.add(HistoryEvent(case_id=walk.id, seq=3, command="complete", actor="forger", role="grid_agency",
                           payload={}, clock_time=forged.clock_time, recorded_at=forged.recorded_at,
                           definition_id=forged.definition_id, status_before="escalated", status_after="escalated",
                           effects={}, state_hash=forged.state_hash, prev_hash=forged.event_hash,
                           event_hash=forged.event_hash))
    broken = verify_chain(walk.id, _events(deployed, walk.id))
    assert broken.seq == 3
