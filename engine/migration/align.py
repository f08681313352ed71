"""Two versions of a definition side by side: which element of the old one becomes which of the new, and
what changed on each in a way a running case would notice.

SpiffWorkflow's `SpecDiff` aligns task specs by id, then by structure for renamed ones, and lists the
serialized attributes that differ. An administrator's `--map old=new` overrides its guesses (it is the
only way to say that a renamed element is the same step). The changes are then sorted by what they mean
for a token standing on the element: a form, a timer expression, a timer's kind, a message, the element's
type, lane (role) or interrupting flag, or only properties the new version applies from now on.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import SpecDiff

from engine.definitions.status_paths import properties
from engine.definitions.forms import FormError, parse_form
from engine.errors import InvalidCommand
from engine.execution.spiff import SERIALIZER, event_definitions

# Kinds of change on an element, as the verdict reads them.
FORM, TIMER_EXPRESSION, TIMER_KIND, MESSAGE, TYPE, LANE, CANCEL, EVENT, PROPERTY = (
    "form", "timer_expression", "timer_kind", "message", "type", "lane", "cancel", "event", "property")


@dataclass(frozen=True)
class ElementChange:
    kind: str
    detail: str
    before: str | None = None
    after: str | None = None


@dataclass
class Alignment:
    source: object            # LoadedDefinition
    target: object
    mapping: dict[str, str]
    spec_diff: SpecDiff
    names: dict[str, str | None] = field(default_factory=dict)        # old spec name → new (None: removed)
    changes: dict[str, list[ElementChange]] = field(default_factory=dict)   # by old spec name

    def new_name(self, old: str) -> str | None:
        if old in self.names:
            return self.names[old]
        return old if old in self.target.spec.task_specs else None


def parse_mapping(pairs) -> dict[str, str]:
    """`["old=new", ...]` (or a dict) as a mapping; a malformed pair is refused."""
    if isinstance(pairs, dict):
        items = list(pairs.items())
    else:
        items = []
        for pair in pairs or []:
            old, sep, new = str(pair).partition("=")
            if not sep:
                raise InvalidCommand(f"--map {pair!r}: expected OLD_ID=NEW_ID")
            items.append((old, new))
    mapping = {}
    for old, new in items:
        old, new = str(old).strip(), str(new).strip()
        if not old or not new:
            raise InvalidCommand(f"mapping {old!r}={new!r}: both element ids are needed")
        mapping[old] = new
    return mapping


def _aligned_specs(diff: SpecDiff, source, target, mapping: dict[str, str]) -> None:
    """Lay the explicit mapping over SpiffWorkflow's guesses; an element's boundary split and join
    (`handle.BoundaryEventSplit`) follow the element."""
    old_specs, new_specs = source.spec.task_specs, target.spec.task_specs
    unknown_old = [o for o in mapping if o not in old_specs]
    unknown_new = [n for n in mapping.values() if n not in new_specs]
    if unknown_old or unknown_new:
        parts = []
        if unknown_old:
            parts.append(f"version {source.info.version} has no element {', '.join(unknown_old)}")
        if unknown_new:
            parts.append(f"version {target.info.version} has no element {', '.join(unknown_new)}")
        raise InvalidCommand("mapping refused: " + "; ".join(parts))
    pairs = dict(mapping)
    for old, new in mapping.items():
        for name in old_specs:
            if name.startswith(old + ".") and new + name[len(old):] in new_specs:
                pairs.setdefault(name, new + name[len(old):])
    for old, new in pairs.items():
        old_spec, new_spec = old_specs[old], new_specs[new]
        diff.alignment[old_spec] = new_spec
        diff.comparisons[old_spec] = diff._compare_task_specs(old_spec, new_spec)
        if new_spec in diff.added:
            diff.added.remove(new_spec)


def _event_changes(before, after) -> list[ElementChange]:
    old_defs, new_defs = event_definitions(before), event_definitions(after)
    found = []
    old_messages = {d.name for d in old_defs if isinstance(d, MessageEventDefinition)}
    new_messages = {d.name for d in new_defs if isinstance(d, MessageEventDefinition)}
    for name in sorted(old_messages - new_messages):
        found.append(ElementChange(MESSAGE, f"message {name} is no longer caught here", name, None))
    old_timers = [d for d in old_defs if isinstance(d, TimerEventDefinition)]
    new_timers = [d for d in new_defs if isinstance(d, TimerEventDefinition)]
    if [type(d) for d in old_timers] != [type(d) for d in new_timers]:
        found.append(ElementChange(TIMER_KIND, "the timer's kind changed",
                                   ", ".join(type(d).__name__ for d in old_timers) or None,
                                   ", ".join(type(d).__name__ for d in new_timers) or None))
    else:
        for old, new in zip(old_timers, new_timers):
            if old.expression != new.expression:
                if isinstance(before, MultipleEventDefinition):
                    found.append(ElementChange(TIMER_KIND, "a timer of an event-based gateway changed; its due "
                                               "time is not re-armed there", old.expression, new.expression))
                else:
                    found.append(ElementChange(TIMER_EXPRESSION, "the timer expression changed", old.expression,
                                               new.expression))
    others_before = sorted(type(d).__name__ + ":" + str(getattr(d, "name", "")) for d in old_defs
                           if not isinstance(d, (MessageEventDefinition, TimerEventDefinition)))
    others_after = sorted(type(d).__name__ + ":" + str(getattr(d, "name", "")) for d in new_defs
                          if not isinstance(d, (MessageEventDefinition, TimerEventDefinition)))
    if others_before != others_after:
        found.append(ElementChange(EVENT, "the event it waits for changed", ", ".join(others_before) or None,
                                   ", ".join(others_after) or None))
    return found


def _changes(old_spec, new_spec, keys: list[str]) -> list[ElementChange]:
    found = []
    if "typename" in keys:
        return [ElementChange(TYPE, "the element's type changed", type(old_spec).__name__, type(new_spec).__name__)]
    if "lane" in keys:
        found.append(ElementChange(LANE, "the element moved to another lane (role)", old_spec.lane, new_spec.lane))
    if "cancel_activity" in keys:
        found.append(ElementChange(CANCEL, "the boundary event's interrupting flag changed",
                                   str(getattr(old_spec, "cancel_activity", None)),
                                   str(getattr(new_spec, "cancel_activity", None))))
    if "event_definition" in keys:
        found += _event_changes(old_spec.event_definition, new_spec.event_definition)
    if "extensions" in keys:
        old_props, new_props = properties(old_spec), properties(new_spec)
        if old_props.get("form") != new_props.get("form"):
            if _only_optional_added(old_props.get("form"), new_props.get("form")):
                found.append(ElementChange(PROPERTY, "the form gained optional fields only",
                                           old_props.get("form"), new_props.get("form")))
            else:
                found.append(ElementChange(FORM, "the task's form changed", old_props.get("form"),
                                           new_props.get("form")))
        others = sorted(k for k in set(old_props) | set(new_props)
                        if k != "form" and old_props.get(k) != new_props.get(k))
        if others:
            found.append(ElementChange(PROPERTY, "properties the new version applies from now on: "
                                       + ", ".join(others)))
    return found


def _only_optional_added(before: str | None, after: str | None) -> bool:
    """A form that keeps every field as it was and adds only optional ones takes the same completions: an
    open task offered under the old form can be completed under the new one."""
    try:
        old, new = {f.name: f for f in parse_form(before)}, {f.name: f for f in parse_form(after)}
    except FormError:
        return False
    return all(new.get(name) == field for name, field in old.items()) and \
        all(not f.required for name, f in new.items() if name not in old)


class _SettledSpecDiff(SpecDiff):
    """SpecDiff whose `removed` and `changed`, properties it recomputes on every call (WorkflowDiff asks
    them once per task of every case), are taken once the alignment is settled."""

    def settle(self) -> None:
        self._removed = set(SpecDiff.removed.fget(self))
        self._changed = SpecDiff.changed.fget(self)

    @property
    def removed(self):
        return self._removed if hasattr(self, "_removed") else SpecDiff.removed.fget(self)

    @property
    def changed(self):
        return self._changed if hasattr(self, "_changed") else SpecDiff.changed.fget(self)


def build(source, target, mapping: dict[str, str] | None = None) -> Alignment:
    mapping = dict(mapping or {})
    diff = _SettledSpecDiff(SERIALIZER.registry, source.spec, target.spec)
    _aligned_specs(diff, source, target, mapping)
    diff.settle()
    alignment = Alignment(source, target, mapping, diff)
    for old_spec, new_spec in diff.alignment.items():
        alignment.names[old_spec.name] = new_spec.name if new_spec is not None else None
        keys = diff.comparisons.get(old_spec) or []
        if new_spec is not None and keys:
            changes = _changes(old_spec, new_spec, keys)
            if changes:
                alignment.changes[old_spec.name] = changes
    return alignment


class AlignmentCache:
    """Alignments by the pair of loaded definitions (the same spec objects the cases' workflows use, which
    SpiffWorkflow's diff compares by identity) and the mapping."""

    def __init__(self, size: int = 32):
        self._entries: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, source, target, mapping: dict[str, str]) -> Alignment:
        key = (id(source.spec), id(target.spec), tuple(sorted(mapping.items())))
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found.source is source and found.target is target:
                self._entries.move_to_end(key)
                return found
        alignment = build(source, target, mapping)
        with self._lock:
            self._entries[key] = alignment
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return alignment


ALIGNMENTS = AlignmentCache()
