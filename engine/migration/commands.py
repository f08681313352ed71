"""The `migrated` and `migration_reverted` commands on one loaded case, through the case service's own
commit (state hash, timer index, chained history event, outbox). The service runs them on database rows;
the audit replay runs the same functions on its in-memory rows, with what the recorded payload names."""
from __future__ import annotations

from datetime import datetime

from engine.errors import InvalidCommand
from engine.execution.spiff import SERIALIZER
from engine.migration import align as A
from engine.migration.moves import Moved, move


def version_of(loaded) -> dict:
    info = loaded.info
    return {"key": info.key, "version": info.version, "definition_id": info.id, "content_hash": info.content_hash}


def apply_migration(cases, session, run, alignment: A.Alignment, armed: dict[str, datetime], *, actor: str,
                    role: str) -> Moved:
    """Move the loaded case `run` to `alignment.target` and commit it as a `migrated` event. Raises
    MoveRefused (nothing is committed then: the caller's transaction rolls back)."""
    status_before = run.case.status
    moved = move(run.workflow, alignment, armed)
    for row in run.tasks:
        if row.spiff_task_id in moved.renamed:
            _, row.element_id, row.name = moved.renamed[row.spiff_task_id]
    payload = {"from": version_of(alignment.source), "to": version_of(alignment.target),
               "mapping": dict(sorted(alignment.mapping.items())),
               "armed": {tid: at.isoformat() for tid, at in sorted(armed.items())}}
    run.case.definition_id = alignment.target.info.id
    run.loaded = alignment.target
    run.notes["migration"] = moved.effects()
    cases._commit(session, run, "migrated", actor, role, payload, status_before)
    return moved


def apply_revert(cases, session, run, source, state_before: str, names_before: dict[str, tuple[str, str]],
                 migrated_seq: int, *, actor: str, role: str, clock) -> None:
    """Put the case back exactly as it was before its `migrated` event `migrated_seq` (the caller checked
    that nothing happened since), as a `migration_reverted` event."""
    status_before = run.case.status
    payload = {"of_seq": migrated_seq, "from": version_of(run.loaded), "to": version_of(source)}
    run.workflow = SERIALIZER.loads(state_before, source.spec, source.subprocess_specs, cases._script_engine(clock))
    run.loaded = source
    run.case.definition_id = source.info.id
    for row in run.tasks:
        if row.spiff_task_id in names_before:
            row.element_id, row.name = names_before[row.spiff_task_id]
    cases._commit(session, run, "migration_reverted", actor, role, payload, status_before)


# -- the audit replay's side -----------------------------------------------------------------------------

def replay_migrated(service, event, payload: dict, clock) -> None:
    """Re-run a recorded migration on a replayed case: its state before the event against the old version,
    after it against the new one; what a revert would need is kept on the replaying service."""
    run = service._load(None, event.case_id, clock)
    source = run.loaded
    if source.info.id != payload["from"]["definition_id"]:
        raise InvalidCommand(f"the recorded migration starts from definition {payload['from']['definition_id']}; "
                             f"the replayed case is on {source.info.id}")
    target = service._definitions.load(payload["to"]["definition_id"])
    if target.info.content_hash != payload["to"]["content_hash"]:
        raise InvalidCommand("the definition migrated to no longer has the content hash the event names")
    snapshots = service.__dict__.setdefault("migration_snapshots", {})
    snapshots[event.seq] = (SERIALIZER.dumps(run.workflow), source,
                            {t.spiff_task_id: (t.element_id, t.name) for t in run.tasks})
    alignment = A.ALIGNMENTS.get(source, target, dict(payload.get("mapping") or {}))
    armed = {tid: datetime.fromisoformat(at) for tid, at in (payload.get("armed") or {}).items()}
    apply_migration(service, service.unit, run, alignment, armed, actor=event.actor, role=event.role)


def replay_reverted(service, event, payload: dict, clock) -> None:
    snapshot = service.__dict__.get("migration_snapshots", {}).get(payload["of_seq"])
    if snapshot is None:
        raise InvalidCommand(f"the replay has no migration at event {payload['of_seq']} to revert")
    state_before, source, names = snapshot
    run = service._load(None, event.case_id, clock)
    apply_revert(service, service.unit, run, source, state_before, names, payload["of_seq"], actor=event.actor,
                 role=event.role, clock=clock)
