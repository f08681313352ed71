"""SpiffWorkflow adapted to the engine: clocked timers, a parser that builds them, instance-only storage.

SpiffWorkflow's timers call `datetime.now()` themselves; the timer classes here ask the workflow's script
engine for the command's clock instead, so a command, a test or an audit replay decides what time it is
without patching anything global.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_FORMAT
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.execution.expressions import ExpressionError

# What a timer's value may be: an ISO-8601 date-time or duration of a few dozen characters, due within ten
# years of when it is set. Longer texts and farther dates are mistakes or attacks, never deadlines.
MAX_TIMER_TEXT = 64
MAX_TIMER_SPAN = timedelta(days=3660)


def _now(my_task) -> datetime:
    return my_task.workflow.script_engine.clock.now()


# ---- timer values as modelers write them -------------------------------------------------------------
# bpmn.io and Camunda Modeler write `<timeDuration>P3D</timeDuration>`: bare ISO-8601 text is a literal. Any
# other text is an expression of the safe evaluator that must produce such text (`"P3D"`, `f"PT{h}H"`).
# Which one a value is, is decided by its text alone, so the deploy check and the parser agree.

_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?", re.I)
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?", re.I)
_CYCLE = re.compile(r"R(\d*)/([^/\s]+)(/([^/\s]+))?", re.I)
TIMER_KINDS = {"timeDate": "date-time", "timeDuration": "duration", "timeCycle": "cycle"}


class TimerValueError(ValueError):
    pass


def literal_kind(text: str) -> str | None:
    """"duration", "date-time" or "cycle" when `text` is a bare ISO-8601 literal of that kind, else None."""
    text = text.strip()
    if _DURATION.fullmatch(text):
        return "duration"
    if _DATE_TIME.fullmatch(text):
        return "date-time"
    if _CYCLE.fullmatch(text):
        return "cycle"
    return None


def check_timer_literal(kind: str, text: str) -> None:
    """Raise TimerValueError unless `text` is a usable literal for a timer of `kind` (timeDate, …)."""
    text = text.strip()
    if kind == "timeDuration":
        TimerEventDefinition.parse_iso_duration(text)
    elif kind == "timeDate":
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise TimerValueError(f"{text!r} is not a date-time: {exc}") from None
        if value.tzinfo is None:
            raise TimerValueError(f"{text!r} has no time zone; write it with one, e.g. {text}+08:00")
    elif kind == "timeCycle":
        _cycle(text, datetime.now(timezone.utc))


def timer_expression(kind: str, text: str | None) -> str | None:
    """The expression the engine evaluates for a timer's text: a literal of the timer's kind is quoted."""
    if text is None:
        return None
    if literal_kind(text) == TIMER_KINDS.get(kind):
        return repr(text.strip())
    return text


def _cycle(text: str, now: datetime) -> tuple[int, datetime, timedelta]:
    """(repetitions, first due time, interval) of an ISO-8601 repeating interval; -1 repeats for ever.

    `R3/PT10H` starts one interval after `now` (the time the timer is reached); `R/2026-01-05T09:00+08:00/P1D`
    starts at its date-time; `R2/PT1H/2026-01-05T12:00+08:00` ends at its date-time."""
    if len(text) > MAX_TIMER_TEXT:
        raise TimerValueError(f"a timer value is at most {MAX_TIMER_TEXT} characters, not {len(text):,}")
    match = _CYCLE.fullmatch(text.strip())
    if match is None:
        raise TimerValueError(f"{text!r} is not a repeating interval such as R3/PT10H")
    count = int(match.group(1)) if match.group(1) else -1
    first, second = match.group(2), match.group(4)

    def part(value):
        if value.upper().startswith("P"):
            return TimerEventDefinition.parse_iso_duration(value)
        parsed = TimerEventDefinition.get_datetime(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise TimerValueError(f"{value!r} has no time zone")
        return parsed

    first, second = part(first), part(second) if second else None
    if isinstance(first, datetime) and isinstance(second, dict):
        interval = TimerEventDefinition.get_timedelta_from_start(second, first)
        start = first
    elif isinstance(first, dict) and isinstance(second, datetime):
        interval = TimerEventDefinition.get_timedelta_from_end(first, second)
        start = second - interval * max(count, 1)
    elif isinstance(first, dict) and second is None:
        interval = TimerEventDefinition.get_timedelta_from_start(first, now)
        start = now + interval
    else:
        raise TimerValueError(f"{text!r}: a repeating interval is R[n]/duration, R[n]/start/duration or "
                              "R[n]/duration/end")
    if interval <= timedelta(0):
        raise TimerValueError(f"{text!r}: the interval must be longer than zero")
    if abs(start - now) > MAX_TIMER_SPAN:
        raise TimerValueError(f"{text!r} first falls due {start.isoformat()}, more than {MAX_TIMER_SPAN.days} days "
                              f"from {now.isoformat()}")
    return count, start, interval


def timer_due(kind: str, value, start: datetime, task=None) -> datetime:
    """When a timer whose expression gave `value` is due: `kind` "duration" counts from `start`, "date" is
    the date-time itself. Refused (ExpressionError; a task error when `task` is given) unless the text is
    at most MAX_TIMER_TEXT characters and the time within MAX_TIMER_SPAN of `start`. Deploy checks literal
    timer values with it, and timers check every value they compute."""
    text = str(value)
    try:
        if len(text) > MAX_TIMER_TEXT:
            raise ExpressionError(f"a timer value is at most {MAX_TIMER_TEXT} characters, not {len(text):,}")
        try:
            if kind == "duration":
                parsed = TimerEventDefinition.parse_iso_duration(text)
                due = start + TimerEventDefinition.get_timedelta_from_start(parsed, start)
            else:
                due = TimerEventDefinition.get_datetime(text)
                due = due if due.tzinfo is not None else due.astimezone(timezone.utc)
        except Exception:   # SpiffWorkflow's parsers raise bare Exception for a text they cannot read
            raise ExpressionError(f"timer value {text!r} is not an ISO-8601 "
                                  + ("duration such as P3D or PT48H" if kind == "duration" else "date-time")) from None
        if abs(due - start) > MAX_TIMER_SPAN:
            raise ExpressionError(f"timer value {text!r} is due {due.isoformat()}, more than "
                                  f"{MAX_TIMER_SPAN.days} days from {start.isoformat()}")
        return due
    except ExpressionError as exc:
        if task is None:
            raise
        raise WorkflowTaskException(str(exc), task=task, exception=exc) from exc


def _fired_once_due(my_task, expression: str, kind: str) -> bool:
    """A date or duration timer: its due time fixed (and bounded) the first time it is reached, by the command's
    clock; fired strictly after it."""
    event_value = my_task._get_internal_data("event_value")
    if event_value is None:
        value = my_task.workflow.script_engine.evaluate(my_task, expression)
        event_value = timer_due(kind, value, _now(my_task), my_task).isoformat()
        my_task._set_internal_data(event_value=event_value)
    if TimerEventDefinition.get_datetime(event_value) < _now(my_task):
        my_task._set_internal_data(event_fired=True)
    return my_task._get_internal_data("event_fired", False)


class ClockedTimeDate(TimeDateEventDefinition):
    """A timeDate timer that fires strictly after its due time, by the command's clock."""

    def has_fired(self, my_task):
        return _fired_once_due(my_task, self.expression, "date")


class ClockedDuration(DurationTimerEventDefinition):
    """A timeDuration timer whose start is the command's clock time when the timer is first reached."""

    def has_fired(self, my_task):
        return _fired_once_due(my_task, self.expression, "duration")


class ClockedCycle(CycleTimerEventDefinition):
    """A timeCycle timer (a reminder every so often, 催办) by the command's clock. Each time it falls due the
    event's outgoing path runs once more; after its last repetition the timer is done."""

    def cycle_complete(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        now = _now(my_task)
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            try:
                cycles, start, interval = _cycle(str(expression), now)
            except (TimerValueError, Exception) as exc:   # SpiffWorkflow's parsers raise bare Exception
                raise WorkflowTaskException(f"timer value {str(expression)[:80]!r} refused: {exc}", task=my_task,
                                            exception=exc) from exc
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": interval.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            due = datetime.fromisoformat(event_value["next"])
            if due < now:
                event_value["next"] = (due + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def event_definitions(definition) -> list:
    """The events a waiting task catches: an event-based gateway waits on several through one
    MultipleEventDefinition."""
    return list(getattr(definition, "event_definitions", None) or [definition])


_CLOCKED = {TimeDateEventDefinition: (ClockedTimeDate, "timeDate"),
            DurationTimerEventDefinition: (ClockedDuration, "timeDuration"),
            CycleTimerEventDefinition: (ClockedCycle, "timeCycle")}


class _ClockedTimers:
    def parse_timer_event(self, event):
        definition = super().parse_timer_event(event)
        clocked = _CLOCKED.get(type(definition))
        if clocked is not None:
            cls, kind = clocked
            definition = cls(definition.name, timer_expression(kind, definition.expression),
                             description=definition.description)
        return definition


class _StartEventParser(_ClockedTimers, SpiffStartEventParser):
    pass


class _BoundaryEventParser(_ClockedTimers, SpiffBoundaryEventParser):
    pass


class _IntermediateCatchEventParser(_ClockedTimers, SpiffIntermediateCatchEventParser):
    pass


class GridBpmnParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = dict(SpiffBpmnParser.OVERRIDE_PARSER_CLASSES)
    for _tag, _parser in (("startEvent", _StartEventParser), ("boundaryEvent", _BoundaryEventParser),
                          ("intermediateCatchEvent", _IntermediateCatchEventParser)):
        OVERRIDE_PARSER_CLASSES[full_tag(_tag)] = (_parser, OVERRIDE_PARSER_CLASSES[full_tag(_tag)][1])


class _InstanceConverter(BpmnWorkflowConverter):
    """Stores the instance without its spec: the spec lives once on the definition row."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore(self, dct, spec, subprocess_specs):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class StateFormatError(Exception):
    pass


class InstanceSerializer:
    def __init__(self):
        config = dict(SPIFF_CONFIG)
        config[ClockedTimeDate] = TimerConditionalEventDefinitionConverter
        config[ClockedDuration] = TimerConditionalEventDefinitionConverter
        config[ClockedCycle] = TimerConditionalEventDefinitionConverter
        self.registry = BpmnWorkflowSerializer.configure(config, DefaultRegistry())
        self._instance = _InstanceConverter(BpmnWorkflow, self.registry)
        self._spec_serializer = BpmnWorkflowSerializer(self.registry)

    def dumps(self, workflow: BpmnWorkflow) -> str:
        dct = self._instance.to_dict(workflow)
        dct["format"] = SPIFF_FORMAT
        return json.dumps(dct, separators=(",", ":"), ensure_ascii=False)

    def loads(self, text: str, spec, subprocess_specs, script_engine) -> BpmnWorkflow:
        dct = json.loads(text)
        if dct.pop("format", None) != SPIFF_FORMAT:
            raise StateFormatError("case state was stored by another SpiffWorkflow format; migrate it first")
        workflow = self._instance.restore(dct, spec, subprocess_specs)
        workflow.script_engine = script_engine
        return workflow


SERIALIZER = InstanceSerializer()
