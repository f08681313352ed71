"""The lifecycle of a change to a county's grid matter list (条例 §13, second paragraph).

A list change is not a grid matter, so it does not borrow the matter statuses of `status.py`: a relevant
department applies (提出申请), the county grid authority reviews (审核), the county party committee and
government agree (同意), and the city is sent the filing (备案) — only then does the new version exist.
A rejection ends it with a written reason. The module offers the same functions as `status.py`
so the engine and the deploy check treat both lifecycles alike.
"""
from __future__ import annotations

from transitions import Machine, MachineError

from .status import UnlawfulMove

NAME = "matter_list_change"
INITIAL = "applied"
STATUSES = (
    "applied",     # a department has applied for the change
    "reviewed",    # the county grid authority found it sound and passed it on
    "approved",    # the county party committee and government agreed
    "filed",       # adopted as the county's new list version and filed with the city
    "rejected",    # refused at review or approval; reason required
)
FINAL_STATUSES = frozenset({"filed", "rejected"})
DONE_STATUSES = FINAL_STATUSES
REASON_REQUIRED = frozenset({"rejected"})

MOVES = (
    ("review", ["applied"], "reviewed"),
    ("approve", ["reviewed"], "approved"),
    ("file", ["approved"], "filed"),
    ("reject", ["applied", "reviewed"], "rejected"),
)


class _Change:
    __slots__ = ("status",)

    def __init__(self, status: str):
        self.status = status


MACHINE = Machine(model=None, states=list(STATUSES),
                  transitions=[{"trigger": t, "source": s, "dest": d} for t, s, d in MOVES],
                  initial=None, auto_transitions=False, model_attribute="status")
_TRIGGER_FOR = {(src, dest): trig for trig, sources, dest in MOVES for src in sources}


def is_lawful(source: str | None, dest: str) -> bool:
    if source is None:
        return dest == INITIAL
    return source == dest or (source, dest) in _TRIGGER_FOR


def move(source: str | None, dest: str) -> str | None:
    if dest not in STATUSES:
        raise UnlawfulMove(source or "∅", dest, "unknown status of a matter list change")
    if source is None:
        if dest != INITIAL:
            raise UnlawfulMove("∅", dest, f"a list change begins as {INITIAL}")
        return None
    if source == dest:
        return None
    trigger = _TRIGGER_FOR.get((source, dest))
    if trigger is None:
        raise UnlawfulMove(source, dest)
    try:
        MACHINE.events[trigger].trigger(_Change(source))
    except MachineError as exc:  # table and machine come from one list; kept as a guard
        raise UnlawfulMove(source, dest, str(exc)) from exc
    return trigger
