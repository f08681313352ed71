"""The lifecycle of one human task: offered → signed for (签收) → in progress → completed, or returned (退单).

SpiffWorkflow only knows READY and COMPLETED; the regulation needs more (a unit games the clock by not
signing, a return needs a reason), so each task row carries its own state moved by this machine. The
deadlines issue adds extension and overdue states here.
"""
from __future__ import annotations

from transitions import Machine, MachineError

STATES = ("offered", "signed_for", "in_progress", "returned", "completed", "cancelled")
OPEN_STATES = frozenset({"offered", "signed_for", "in_progress"})

ACTIONS = (
    ("sign_for", ["offered"], "signed_for"),
    ("start", ["signed_for"], "in_progress"),
    ("return_", ["offered", "signed_for", "in_progress"], "returned"),
    ("complete", ["offered", "signed_for", "in_progress"], "completed"),
    # The engine cancels a task when its BPMN element ends without it (an interrupting event, a case cancel).
    ("cancel", ["offered", "signed_for", "in_progress"], "cancelled"),
)


class TaskActionRefused(Exception):
    """The action is not allowed for the task in its current state; the message says why."""


class _Task:
    __slots__ = ("state",)

    def __init__(self, state: str):
        self.state = state


MACHINE = Machine(
    model=None,
    states=list(STATES),
    transitions=[{"trigger": t, "source": s, "dest": d} for t, s, d in ACTIONS],
    initial=None,
    auto_transitions=False,
    model_attribute="state",
)


def apply(state: str, action: str, *, sign_required: bool = False, returnable: bool = False,
          reason: str | None = None) -> str:
    """Return the state after `action`, or raise TaskActionRefused naming the rule."""
    if action not in MACHINE.events:
        raise TaskActionRefused(f"unknown task action {action!r}")
    if action == "return_":
        if not returnable:
            raise TaskActionRefused("this task cannot be returned (退单): only dispatched tasks can")
        if not (reason and reason.strip()):
            raise TaskActionRefused("a return (退单) needs a reason")
    if action in ("sign_for", "start") and not sign_required:
        raise TaskActionRefused("this task is not signed for; complete it directly")
    if action == "complete" and sign_required and state == "offered":
        raise TaskActionRefused("sign for the task (签收) before completing it")
    task = _Task(state)
    try:
        MACHINE.events[action].trigger(task)
    except MachineError:
        raise TaskActionRefused(f"cannot {action.rstrip('_')} a task that is {state}") from None
    return task.state
