"""Moving one case's workflow instance to the new version, in memory: the step the `migrated` command runs
and the audit replay runs again.

SpiffWorkflow's `migrate_workflow` swaps each task's spec for its aligned one and resets the tasks of a
state mask (by default ready and waiting), so their predicted futures are redrawn from the new version. A
reset also clears what the task holds — its data and internal data — and re-evaluates a waiting timer at
once, by the migration's clock: a due time lost, a new expression failing inside SpiffWorkflow, or a
shortened deadline firing during the move. So only ready tasks are reset (their data put back after);
waiting events keep their state and due time, their predicted children follow the new version when
they fire (SpiffWorkflow syncs children to the spec's outputs then), and a timer whose expression changed
is evaluated again here from the new version with a clock standing at the time it was armed (a three-day
limit shortened to two counts from the same start). Finished steps of removed elements that
lead nowhere are taken off the tree, since the new version could not load them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import WorkflowDiff, migrate_workflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.clock import FixedClock
from engine.errors import EngineError
from engine.execution.expressions import ExpressionError
from engine.execution.functions import script_engine
from engine.migration import align as A
from engine.migration.verdicts import FINISHED, Reason, reason

RESET = TaskState.READY
KEPT = TaskState.READY | TaskState.WAITING


class MoveRefused(EngineError):
    code = "migration_refused"

    def __init__(self, why: Reason):
        super().__init__(why.en)
        self.reason = why


@dataclass
class Moved:
    renamed: dict[str, tuple[str, str, str]] = field(default_factory=dict)   # spiff id → (old, new, new name)
    rearmed: list[list] = field(default_factory=list)     # [element, spiff id, armed at, due before, due after]
    dropped: list[str] = field(default_factory=list)

    def effects(self) -> dict:
        return {"renamed": sorted([old, new] for old, new, _ in self.renamed.values()),
                "rearmed": [[r[0], r[3], r[4]] for r in self.rearmed], "dropped": sorted(self.dropped)}


def move(workflow, alignment: A.Alignment, armed: dict[str, datetime]) -> Moved:
    """Move `workflow` to `alignment.target` in place. `armed`: when each waiting timer whose expression
    changed was armed, by element id (SpiffWorkflow's task ids are not stable across a replay). Raises
    MoveRefused."""
    target = alignment.target
    to = target.info.version
    moved = Moved()
    kept = {t.id: (t.state, t.data, t.internal_data) for t in workflow.get_tasks(state=KEPT, skip_subprocesses=True)}
    live_names = {t.id: t.task_spec.name for t in workflow.get_tasks(state=KEPT, skip_subprocesses=True)}
    diff = WorkflowDiff(workflow, alignment.spec_diff)
    try:
        migrate_workflow(diff, workflow, target.spec, reset_mask=RESET)
    except SpiffWorkflowException as exc:
        raise MoveRefused(reason("does_not_hold", None, to, str(exc).splitlines()[0])) from None
    for task_id, (state, data, internal) in kept.items():
        task = workflow.tasks.get(task_id)
        if task is None:
            raise MoveRefused(reason("does_not_hold", live_names[task_id], to, "an open step left the instance"))
        task.data, task.internal_data = data, internal
        if task.state != state:
            raise MoveRefused(reason("does_not_hold", task.task_spec.name, to,
                                     f"{TaskState.get_name(state)} became {TaskState.get_name(task.state)}"))
        if task.task_spec.name != live_names[task_id] and "." not in live_names[task_id]:
            moved.renamed[str(task_id)] = (live_names[task_id], task.task_spec.name,
                                           task.task_spec.bpmn_name or task.task_spec.name)
    _drop_unloadable(workflow, target, moved, to)
    for task_id in kept:
        task = workflow.tasks[task_id]
        if task.state != TaskState.WAITING or "event_value" not in task.internal_data:
            continue
        changes = alignment.changes.get(live_names[task_id], [])
        if any(c.kind == A.TIMER_EXPRESSION for c in changes):
            _rearm(workflow, task, armed.get(live_names[task_id]), moved, to)
    return moved


def _drop_unloadable(workflow, target, moved: Moved, to) -> None:
    specs = target.spec.task_specs
    for task in list(workflow.tasks.values()):
        if specs.get(task.task_spec.name) is task.task_spec:
            continue
        if task.has_state(FINISHED) and not task._children and task.parent is not None:
            task.parent._children.remove(task.id)
            del workflow.tasks[task.id]
            moved.dropped.append(task.task_spec.name)
        elif task.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE) and task.parent is not None:
            descendants = list(task)
            task.parent._children.remove(task.id)
            for gone in descendants:
                workflow.tasks.pop(gone.id, None)
        else:
            code = "passed_element_removed" if task.has_state(FINISHED) else "element_removed"
            raise MoveRefused(reason(code, task.task_spec.name, to))


def _rearm(workflow, task, armed_at: datetime | None, moved: Moved, to) -> None:
    name = task.task_spec.name
    if armed_at is None:
        raise MoveRefused(reason("timer_changed", name, to, "the time it was armed is not known"))
    before = task.internal_data.get("event_value")
    command_engine = workflow.script_engine
    # The command's deadlines object, so the rule versions a new expression uses are recorded with it.
    workflow.script_engine = script_engine(FixedClock(armed_at), deadlines=command_engine.deadlines)
    task.internal_data.pop("event_value", None)
    task.internal_data.pop("event_fired", None)
    try:
        task.task_spec.event_definition.has_fired(task)
        after = task.internal_data["event_value"]
        TimerEventDefinition.get_datetime(after)
    except (SpiffWorkflowException, ExpressionError, KeyError, ValueError, TypeError) as exc:
        raise MoveRefused(reason("timer_changed", name, to, f"the new expression fails: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")) from None
    finally:
        workflow.script_engine = command_engine
    task.internal_data.pop("event_fired", None)
    moved.rearmed.append([name, str(task.id), armed_at.isoformat(), before, after])
