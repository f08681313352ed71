"""A case as it was at a past moment: its history replayed up to that moment (the same code that ran it),
so status, open tasks, deadlines and data are what the engine held then — not a guess from today's rows."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rules.task_lifecycle import OPEN_STATES

from engine.deadlines import timers
from engine.errors import EngineError, NotFound
from engine.audit.replay import Replayer

PERSONAL = ("reporter", "phone", "mobile", "id_number", "id_card", "address")
HIDDEN = "（已隐去 hidden）"


class HistoryUnreliable(EngineError):
    """The history does not replay up to the moment asked: what it would show cannot be trusted."""

    code = "history_unreliable"


@dataclass(frozen=True)
class AsOfView:
    case_id: int
    moment: datetime
    last_seq: int
    last_step_at: datetime
    definition_id: int
    status: str
    level: str | None
    unit: str | None
    supervision: str | None
    open_tasks: list[dict]
    deadlines: list[dict]
    data: dict

    def to_dict(self) -> dict:
        return {"case_id": self.case_id, "as_of": self.moment.isoformat(), "last_seq": self.last_seq,
                "last_step_at": self.last_step_at.isoformat(), "definition_id": self.definition_id,
                "status": self.status, "level": self.level, "unit": self.unit, "supervision": self.supervision,
                "open_tasks": self.open_tasks, "deadlines": self.deadlines, "data": self.data}


def mask(data, reveal: bool = False):
    """Personal data (条例 §18) hidden unless the reader's role needs it."""
    if reveal:
        return data
    if isinstance(data, dict):
        return {k: (HIDDEN if any(p in k.lower() for p in PERSONAL) else mask(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [mask(v) for v in data]
    return data


def as_of(replayer: Replayer, case_id: int, moment: datetime, *, reveal: bool = False) -> AsOfView:
    if moment.tzinfo is None:
        raise EngineError("the moment needs a time zone (e.g. 2026-11-05T10:00+08:00)")
    result = replayer.case(case_id, until=moment)
    if result.events == 0:
        raise NotFound(f"case {case_id} was not reported yet at {moment.isoformat()}")
    if not result.equal:
        why = result.cannot or f"step {result.divergence.seq} ({result.divergence.command}) diverges: " \
                               f"{result.divergence.reason}"
        raise HistoryUnreliable(f"case {case_id}'s history does not replay up to {moment.isoformat()}: {why}; "
                                "run `gridflow audit replay` for the details")
    run = result.state.run
    case = run.case
    open_tasks = [{"id": t.id, "element": t.element_id, "name": t.name, "role": t.role, "unit": t.unit,
                   "agency_level": t.agency_level, "state": t.state, "since": t.created_at.isoformat()}
                  for t in run.tasks if t.state in OPEN_STATES]
    deadlines = [{"element": w.element_id, "name": w.name, "due_at": w.due_at.isoformat() if w.due_at else None,
                  "passed": bool(w.due_at and w.due_at < moment)} for w in timers.waiting_timers(run.workflow)]
    data = run.workflow.last_task.data if run.workflow.last_task is not None else {}
    return AsOfView(case_id, moment, result.events, result.state.at, case.definition_id, case.status, case.level,
                    case.unit, case.supervision, open_tasks, deadlines, mask(dict(data), reveal))
