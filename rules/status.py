"""The statutory status of a grid matter and the lawful moves between them (domain.md §3, 条例 §17).

The status is what the city platform shows and what statistics count, so every move goes through one
`transitions` machine: a move the machine does not know is unlawful, at deploy time and at run time.
"""
from __future__ import annotations

from transitions import Machine, MachineError

NAME = "grid_matter"
INITIAL = "reported"
STATUSES = (
    "reported",            # collected by a grid worker, not yet verified
    "registered",          # 核实登记
    "self_handling",       # within the worker's authority
    "self_resolved",
    "escalated",           # 逐级上报, at the level held in the case's `level`
    "not_filed",           # not admissible; reason required
    "dispatched",          # 分流交办: the handling clock starts here
    "in_progress",         # 签收, being handled
    "returned",            # 退单, reason required
    "overdue",             # past the deadline; a written explanation is owed
    "feedback_submitted",  # 处理反馈
    "verifying",           # 核查
    "rework",              # 返工
    "closed",              # 结案
    "evaluated",           # 回访, 满意度
    "reopened",            # 重新办理: an unsatisfied follow-up sent the matter back for handling
    "suspended",           # 挂账
    "cancelled",           # withdrawn; reason required
)

FINAL_STATUSES = frozenset({"self_resolved", "not_filed", "cancelled"})
# Closed and evaluated matters are done but not final: an unsatisfied follow-up may reopen them.
DONE_STATUSES = FINAL_STATUSES | {"closed", "evaluated"}

# Moves into these statuses must carry a written reason (条例 §17; 退单 and 不予立案 practice).
REASON_REQUIRED = frozenset({"not_filed", "returned", "cancelled"})

_OPEN = [s for s in STATUSES if s not in DONE_STATUSES]

# (trigger, sources, destination): the verbs are the domain's, so a history reads as the regulation does.
MOVES = (
    ("verify", ["reported"], "registered"),
    ("not_file", ["reported", "registered", "escalated"], "not_filed"),
    ("self_handle", ["registered"], "self_handling"),
    ("resolve", ["self_handling"], "self_resolved"),
    ("escalate", ["registered", "self_handling"], "escalated"),
    ("dispatch", ["registered", "escalated", "returned", "evaluated", "reopened"], "dispatched"),
    ("sign_for", ["dispatched", "overdue", "rework"], "in_progress"),
    ("return_", ["dispatched", "in_progress"], "returned"),
    ("become_overdue", ["dispatched", "in_progress", "rework"], "overdue"),
    ("submit_feedback", ["dispatched", "in_progress", "overdue", "rework", "suspended"], "feedback_submitted"),
    ("check", ["feedback_submitted"], "verifying"),
    ("fail_check", ["verifying"], "rework"),
    # A closing needs a checked result, or the agency's ruling (审定) after bounded rework.
    ("close", ["verifying", "rework"], "closed"),
    ("evaluate", ["closed"], "evaluated"),
    ("reopen", ["closed", "evaluated"], "reopened"),
    # 挂账: a matter that cannot be handled for now leaves the clock (and the overdue counts) until resumed,
    # back to where it was.
    ("suspend", ["dispatched", "in_progress", "overdue", "rework"], "suspended"),
    ("resume", ["suspended"], "in_progress"),
    ("resume", ["suspended"], "dispatched"),
    ("resume", ["suspended"], "overdue"),
    ("resume", ["suspended"], "rework"),
    # 重复件: a report linked to an open master before dispatch is closed when its master is.
    ("close_as_duplicate", ["reported", "registered", "self_handling", "escalated"], "closed"),
    ("cancel", _OPEN, "cancelled"),
)


class UnlawfulMove(Exception):
    """A status move the regulation does not allow."""

    def __init__(self, source: str, dest: str, detail: str = ""):
        self.source, self.dest = source, dest
        super().__init__(f"unlawful status move {source} → {dest}" + (f": {detail}" if detail else ""))


class _Matter:
    """Stand-in model; one shared machine serves every case (see engineering notes: ~8 µs a move)."""

    __slots__ = ("status",)

    def __init__(self, status: str):
        self.status = status


MACHINE = Machine(
    model=None,
    states=list(STATUSES),
    transitions=[{"trigger": t, "source": s, "dest": d} for t, s, d in MOVES],
    initial=None,
    auto_transitions=False,
    model_attribute="status",
)

_TRIGGER_FOR = {(src, dest): trig for trig, sources, dest in MOVES for src in sources}


def is_lawful(source: str | None, dest: str) -> bool:
    """A case starts in any status the machine has a move out of or is `reported`; staying put is lawful."""
    if source is None:
        return dest == "reported"
    return source == dest or (source, dest) in _TRIGGER_FOR


def trigger_for(source: str, dest: str) -> str:
    try:
        return _TRIGGER_FOR[(source, dest)]
    except KeyError:
        raise UnlawfulMove(source, dest) from None


def move(source: str | None, dest: str) -> str | None:
    """Apply one move through the machine; returns the trigger's name (None when the status stays)."""
    if dest not in STATUSES:
        raise UnlawfulMove(source or "∅", dest, "unknown status")
    if source is None:
        if dest != "reported":
            raise UnlawfulMove("∅", dest, "a matter begins as reported")
        return None
    if source == dest:
        return None
    trigger = trigger_for(source, dest)
    matter = _Matter(source)
    try:
        MACHINE.events[trigger].trigger(matter)
    except MachineError as exc:  # the table and the machine are built from one list; kept as a guard
        raise UnlawfulMove(source, dest, str(exc)) from exc
    return trigger


def lawful_moves() -> list[tuple[str, str, str]]:
    return [(src, trig, dest) for (src, dest), trig in sorted(_TRIGGER_FOR.items())]
