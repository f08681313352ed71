"""The hash-chained event log of a case and the state hash each event carries.

An event's hash covers its own fields and the previous event's hash, so changing, deleting, inserting or
reordering events breaks the chain at a place `verify_chain` reports. The state hash is taken over the
meaning of the state (element names, task states, data), not over SpiffWorkflow's JSON, which holds random
task ids and wall-clock stamps: an audit replay must reproduce it exactly.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from SpiffWorkflow.util.task import TaskState

GENESIS = "0" * 64


def canonical(value, default=str) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default).encode()


def _meaning(value):
    """What an object in a task's internal data means, never its memory address: an event-based gateway
    keeps the events it saw as objects, whose default text would differ in every process."""
    definition = getattr(value, "event_definition", None)
    if definition is not None:
        return {"event": type(definition).__name__, "name": getattr(definition, "name", None),
                "payload": getattr(value, "payload", None), "correlations": getattr(value, "correlations", None)}
    text = str(value)
    return type(value).__name__ if " at 0x" in text else text


def sha256(value) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def _internal(internal_data: dict) -> dict:
    """A multi-instance task lists its finished instances by their random task ids (`merged`); their number
    is the meaning (each instance's own state is in the tree), so a replay hashes equal."""
    if "merged" not in internal_data:
        return internal_data
    return {**internal_data, "merged": len(internal_data["merged"])}


def state_hash(workflow, status: str, level: str | None, tasks: list[tuple[str, str]]) -> str:
    """`tasks`: (element id, lifecycle state) of the case's human tasks in creation order."""
    tree = []
    for task in workflow.get_tasks():
        entry = [task.task_spec.name, task.state, _internal(task.internal_data)]
        if task.has_state(_LIVE):
            entry.append(task.data)
        tree.append(entry)
    meaning = {"tree": tree, "data": workflow.data, "status": status, "level": level, "tasks": tasks}
    return hashlib.sha256(canonical(meaning, default=_meaning)).hexdigest()


@dataclass(frozen=True)
class EventFields:
    case_id: int
    seq: int
    command: str
    actor: str
    role: str
    payload: dict
    clock_time: datetime
    definition_id: int
    status_before: str | None
    status_after: str
    effects: dict
    state_hash: str
    prev_hash: str

    def digest(self) -> str:
        hashed = {name: getattr(self, name) for name in EventFields.__dataclass_fields__}
        hashed["clock_time"] = self.clock_time.isoformat()
        return sha256(hashed)


@dataclass(frozen=True)
class BrokenLink:
    case_id: int
    seq: int
    reason: str


def verify_chain(case_id: int, events) -> BrokenLink | None:
    """The first broken link of a case's events (ordered by seq), or None when the chain holds."""
    prev = GENESIS
    for position, event in enumerate(events, start=1):
        if event.seq != position:
            return BrokenLink(case_id, position, f"expected event {position}, found {event.seq}: "
                                                 "an event was deleted, inserted or reordered")
        if event.prev_hash != prev:
            return BrokenLink(case_id, position, "previous-hash link does not match: an event before it changed")
        recorded = EventFields(**{name: getattr(event, name) for name in EventFields.__dataclass_fields__})
        if recorded.case_id != case_id or recorded.digest() != event.event_hash:
            return BrokenLink(case_id, position, "event content does not match its hash: it was edited")
        prev = event.event_hash
    return None
