"""SpiffWorkflow adapted to the engine: clocked timers, a parser that builds them, instance-only storage.

SpiffWorkflow's timers call `datetime.now()` themselves; the timer classes here ask the workflow's script
engine for the command's clock instead, so a command, a test or an audit replay decides what time it is
without patching anything global.
"""
from __future__ import annotations

import json
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


class ClockedTimeDate(TimeDateEventDefinition):
    """A timeDate timer that fires strictly after its due time, by the command's clock."""

    def has_fired(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            event_value = timer_due("date", event_value, _now(my_task), my_task).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) < _now(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockedDuration(DurationTimerEventDefinition):
    """A timeDuration timer whose start is the command's clock time when the timer is first reached."""

    def has_fired(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            event_value = timer_due("duration", expression, _now(my_task), my_task).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) < _now(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


def event_definitions(definition) -> list:
    """The events a waiting task catches: an event-based gateway waits on several through one
    MultipleEventDefinition."""
    return list(getattr(definition, "event_definitions", None) or [definition])


_CLOCKED = {TimeDateEventDefinition: ClockedTimeDate, DurationTimerEventDefinition: ClockedDuration}


class _ClockedTimers:
    def parse_timer_event(self, event):
        definition = super().parse_timer_event(event)
        clocked = _CLOCKED.get(type(definition))
        if clocked is not None:
            definition = clocked(definition.name, definition.expression, description=definition.description)
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
