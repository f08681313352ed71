"""The lifecycle of one human task: offered → signed for (签收) → in progress → completed, or returned (退单).

SpiffWorkflow only knows READY and COMPLETED; the regulation needs more (a unit games the clock by not
signing, a return needs a reason), so each task row carries its own state moved by this machine. The
extension, overdue and written-explanation states serve the deadlines.
"""
from __future__ import annotations

from transitions import Machine, MachineError

STATES = ("offered", "signed_for", "in_progress", "extension_requested", "overdue", "returned", "completed",
          "cancelled",
          # 条例 §13: a grid worker refuses work that is off the county's matter list.
          "refused",
          # A written explanation (书面说明) task lives through these instead of offered → completed.
          "explanation_required", "explanation_submitted", "explanation_accepted", "explanation_rejected")
OPEN_STATES = frozenset({"offered", "signed_for", "in_progress", "extension_requested", "overdue",
                         "explanation_required"})
_WORKING = ["signed_for", "in_progress"]

ACTIONS = (
    ("sign_for", ["offered"], "signed_for"),
    # Signing late is still signing; the task stays overdue.
    ("sign_for", ["overdue"], "overdue"),
    ("start", ["signed_for"], "in_progress"),
    ("return_", ["offered", "signed_for", "in_progress"], "returned"),
    ("refuse", ["offered", "signed_for", "in_progress", "overdue"], "refused"),
    # 延期: asked before the deadline; the dispatching agency's decision puts the task back to work.
    ("request_extension", _WORKING, "extension_requested"),
    ("decide_extension", ["extension_requested"], "in_progress"),
    # Past the deadline the task stays open: the unit can still report back, late. A pending extension
    # request lapses.
    ("become_overdue", ["offered", "signed_for", "in_progress", "extension_requested"], "overdue"),
    ("complete", ["offered", "signed_for", "in_progress", "overdue"], "completed"),
    ("submit_explanation", ["explanation_required"], "explanation_submitted"),
    ("accept_explanation", ["explanation_submitted"], "explanation_accepted"),
    ("reject_explanation", ["explanation_submitted"], "explanation_rejected"),
    # The engine cancels a task when its BPMN element ends without it (an interrupting event, a case cancel).
    ("cancel", sorted(OPEN_STATES), "cancelled"),
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
          refusable: bool = False, reason: str | None = None) -> str:
    """Return the state after `action`, or raise TaskActionRefused naming the rule."""
    if action not in MACHINE.events:
        raise TaskActionRefused(f"unknown task action {action!r}")
    if action == "return_":
        if not returnable:
            raise TaskActionRefused("this task cannot be returned (退单): only dispatched tasks can")
        if not (reason and reason.strip()):
            raise TaskActionRefused("a return (退单) needs a reason")
    if action == "refuse":
        if not refusable:
            raise TaskActionRefused("this task cannot be refused: the definition gives it no refusal path "
                                    "(status_on_refuse)")
        if not (reason and reason.strip()):
            raise TaskActionRefused("a refusal (条例第十三条) needs a reason")
    if action in ("sign_for", "start", "request_extension") and not sign_required:
        raise TaskActionRefused("this task is not signed for; complete it directly")
    if action == "request_extension" and not (reason and reason.strip()):
        raise TaskActionRefused("an extension request (延期申请) needs a reason")
    if action == "complete" and sign_required and state == "offered":
        raise TaskActionRefused("sign for the task (签收) before completing it")
    task = _Task(state)
    try:
        MACHINE.events[action].trigger(task)
    except MachineError:
        raise TaskActionRefused(f"cannot {action.rstrip('_')} a task that is {state}") from None
    return task.state
