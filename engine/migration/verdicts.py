"""The verdict on one case: can it move to the new version as it stands, and if not, why not.

Read from the stored state's JSON for a dry run (no workflow is rebuilt: a plan over thousands of cases
stays cheap) or from the loaded workflow when a case is actually moved; both give the same facts. A
token is on an element when its task is ready, waiting or started; finished tasks are the path behind
it; predicted ones are redrawn from the new version by the move.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.migration import align as A

LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
FINISHED = TaskState.COMPLETED | TaskState.CANCELLED

# code → (中文, English); {el}, {to}, {detail} filled in.
REASONS = {
    "element_removed": ("令牌所在的元素 {el} 在版本 {to} 中已删除（可用 --map {el}=新元素 指定对应元素）",
                        "the element {el} its token is on was removed in version {to} (map it with --map {el}=NEW)"),
    "element_changed": ("令牌所在的元素 {el} 在版本 {to} 中有实质变更：{detail}",
                        "the element {el} its token is on changed in a way that matters in version {to}: {detail}"),
    "form_changed": ("待办任务 {el} 的表单在版本 {to} 中已改变：{detail}",
                     "the form of the open task {el} changed in version {to}: {detail}"),
    "timer_changed": ("等待中的定时器 {el} 无法按新版本重新设定：{detail}",
                      "the waiting timer {el} cannot be re-armed from version {to}: {detail}"),
    "message_removed": ("案件在 {el} 等待的消息在版本 {to} 中已不存在：{detail}",
                        "the message the case waits for at {el} is gone in version {to}: {detail}"),
    "passed_element_removed": ("案件经过的元素 {el} 在版本 {to} 中已删除，而其后仍有进行中的步骤（可用 --map 指定对应元素）",
                               "the case passed through {el}, which version {to} removed, on its way to where it "
                               "is now (map it with --map {el}=NEW)"),
    "timer_due": ("定时器 {el} 已到期（{detail}），请先由定时服务触发",
                  "the timer {el} is due ({detail}); let the timer service fire it first"),
    "subprocess": ("案件正在运行子流程或调用活动，暂不支持迁移",
                   "the case runs a subprocess or call activity; those are not migrated"),
    "not_on_source": ("案件现在处于版本 {detail}，不在迁移的源版本上",
                      "the case is on version {detail} now, not on the version migrated from"),
    "finished": ("案件已办结", "the case has finished"),
    "does_not_hold": ("按版本 {to} 移动后案件状态不一致：{detail}",
                      "the case would not stand still under version {to}: {detail}"),
}


@dataclass(frozen=True)
class Reason:
    code: str
    element: str | None
    detail: str = ""
    zh: str = ""
    en: str = ""

    def as_dict(self) -> dict:
        return {"code": self.code, "element": self.element, "detail": self.detail,
                "message": {"zh": self.zh, "en": self.en}}


def reason(code: str, element: str | None, to_version, detail: str = "") -> Reason:
    zh, en = REASONS[code]
    values = {"el": element or "", "to": to_version, "detail": detail}
    return Reason(code, element, detail, zh.format(**values), en.format(**values))


@dataclass(frozen=True)
class Note:
    """What the move will do (or did) beside moving: rename, re-arm, drop, new rules from now on."""

    kind: str        # renamed, rearm, dropped, property
    element: str
    detail: str = ""
    before: str | None = None
    after: str | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "element": self.element, "detail": self.detail, "before": self.before,
                "after": self.after}


@dataclass
class Verdict:
    case_id: int
    revision: int
    status: str
    migratable: bool
    reasons: list[Reason] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    # planned (dry run), migrated, refused, skipped (not on the source version any more), conflict
    outcome: str = "planned"
    rechecked: bool = False       # the case moved since the plan it was run with; this verdict is fresh

    def as_dict(self) -> dict:
        return {"case_id": self.case_id, "revision": self.revision, "status": self.status,
                "migratable": self.migratable, "outcome": self.outcome, "rechecked": self.rechecked,
                "reasons": [r.as_dict() for r in self.reasons], "notes": [n.as_dict() for n in self.notes]}


@dataclass(frozen=True)
class Fact:
    id: str
    name: str          # task spec name (the BPMN id, or a derived name like handle.BoundaryEventSplit)
    state: int
    internal: dict
    parent: str | None
    children: tuple[str, ...]


def facts_from_state(text: str) -> tuple[list[Fact], bool]:
    """Facts from a stored state; second: whether the case runs subprocesses."""
    dct = json.loads(text)
    facts = [Fact(t["id"], t["task_spec"], t["state"], t.get("internal_data") or {}, t.get("parent"),
                  tuple(t.get("children") or ())) for t in dct["tasks"].values()]
    return facts, bool(dct.get("subprocesses"))


def facts_from_workflow(workflow) -> tuple[list[Fact], bool]:
    facts = [Fact(str(t.id), t.task_spec.name, t.state, t.internal_data, str(t.parent.id) if t.parent else None,
                  tuple(str(c) for c in t._children)) for t in workflow.tasks.values()]
    return facts, bool(workflow.subprocesses)


def _is_timer(spec) -> bool:
    definition = getattr(spec, "event_definition", None)
    return definition is not None and any(isinstance(d, TimerEventDefinition)
                                          for d in A.event_definitions(definition))


def judge(alignment: A.Alignment, case_id: int, revision: int, status: str, facts: list[Fact],
          subprocesses: bool, now: datetime, extended: set[str] = frozenset()) -> Verdict:
    """`extended`: SpiffWorkflow ids of the case's open tasks whose deadline was extended."""
    to = alignment.target.info.version
    verdict = Verdict(case_id, revision, status, True)
    reasons, notes = verdict.reasons, verdict.notes
    if subprocesses:
        reasons.append(reason("subprocess", None, to))
    old_specs = alignment.source.spec.task_specs
    by_id = {f.id: f for f in facts}
    for fact in facts:
        new = alignment.new_name(fact.name)
        live = bool(fact.state & LIVE)
        spec = old_specs.get(fact.name)
        if new is None:
            if "." in fact.name:   # a boundary split or join: reported under the element it belongs to
                continue
            if live:
                reasons.append(reason("element_removed", fact.name, to))
            elif fact.state & FINISHED:
                if fact.children:
                    reasons.append(reason("passed_element_removed", fact.name, to))
                else:
                    notes.append(Note("dropped", fact.name, "finished step of an element the new version removed; "
                                      "taken off the instance's tree (the history keeps it)"))
            continue
        if not live:
            continue
        if new != fact.name and "." not in fact.name:
            notes.append(Note("renamed", fact.name, "mapped", fact.name, new))
        due = fact.internal.get("event_value")
        if fact.state & TaskState.WAITING and isinstance(due, str) and spec is not None and _is_timer(spec):
            if TimerEventDefinition.get_datetime(due) < now:
                reasons.append(reason("timer_due", fact.name, to, due))
        for change in alignment.changes.get(fact.name, []):
            manual = bool(getattr(spec, "manual", False))
            if change.kind == A.FORM:
                if manual and fact.state & TaskState.READY:
                    reasons.append(reason("form_changed", fact.name, to, f"{change.before} → {change.after}"))
            elif change.kind == A.TIMER_EXPRESSION:
                hosts = set(by_id[fact.parent].children) - {fact.id} if fact.parent in by_id else set()
                if hosts & extended:
                    reasons.append(reason("timer_changed", fact.name, to, "its task's deadline was extended "
                                          "(延期); the extension would be lost"))
                elif isinstance(due, str):
                    notes.append(Note("rearm", fact.name, "re-armed from the new expression, counted from when the "
                                      "timer was armed", change.before, change.after))
            elif change.kind == A.TIMER_KIND:
                reasons.append(reason("timer_changed", fact.name, to, f"{change.detail}: {change.before} → "
                                      f"{change.after}"))
            elif change.kind == A.MESSAGE:
                reasons.append(reason("message_removed", fact.name, to, change.before or ""))
            elif change.kind == A.LANE:
                if manual:
                    reasons.append(reason("element_changed", fact.name, to, f"{change.detail}: {change.before} → "
                                          f"{change.after}"))
            elif change.kind == A.PROPERTY:
                notes.append(Note("property", fact.name, change.detail))
            else:   # type, interrupting flag, another event
                reasons.append(reason("element_changed", fact.name, to, f"{change.detail}: {change.before} → "
                                      f"{change.after}"))
    unique = list(dict.fromkeys(reasons))
    reasons[:] = unique
    verdict.migratable = not reasons
    return verdict
