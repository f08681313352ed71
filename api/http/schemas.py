"""Marshmallow schemas shared by the HTTP resources: what requests carry and what responses hold."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.cases.commands import SUPERVISION_CARDS
from engine.cases.queries import MAX_PER_PAGE
from rules.levels import LEVELS

MAX_ID = 2**31 - 1  # ids are INTEGER columns (4 bytes on PostgreSQL); larger ids are refused, not overflowed
Id = lambda **kw: fields.Integer(strict=True, validate=validate.Range(1, MAX_ID), **kw)  # noqa: E731
Text = lambda n, **kw: fields.String(validate=validate.Length(max=n), **kw)  # noqa: E731
# Field names in a matter's data, a form or a message payload (the engine refuses others, and more of them).
FIELD_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,99}$"


class FieldValues(fields.Dict):
    """A free-form object of named values: the spec says its keys are field names (`propertyNames`) and how
    many it may have, so a client (or a fuzzer) that follows the spec is not refused by the engine."""

    def __init__(self, **kwargs):
        super().__init__(keys=fields.String(), **kwargs)


class ErrorMessageSchema(Schema):
    zh = fields.String(required=True)
    en = fields.String(required=True)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable, for programs to branch on"})
    message = fields.Nested(ErrorMessageSchema, required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "field problems, by location and field"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    # A screen of a grid app shows about 20 rows; a client wanting more asks for more (up to MAX_PER_PAGE).
    per_page = fields.Integer(load_default=20, validate=validate.Range(1, MAX_PER_PAGE))


class PageSchema(Schema):
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


# -- cases ------------------------------------------------------------------------------------------------

class CaseStartSchema(Schema):
    process_key = fields.String(required=True, validate=validate.Length(1, 200))
    version = fields.Integer(validate=validate.Range(1, 1_000_000))
    data = FieldValues(load_default=dict,
                       metadata={"description": "the matter: title, grid_code, category, sub_category, urgency, "
                                                "reporter {name, phone, id_number, address}, ..."})


class CaseSearchArgs(PageArgs):
    status = Text(40)
    grid = Text(40, metadata={"description": "grid code"})
    unit = Text(100, metadata={"description": "responsible unit code"})
    category = Text(100)
    overdue = fields.Boolean()
    created_from = fields.Date(metadata={"description": "first day (Beijing time), inclusive"})
    created_to = fields.Date(metadata={"description": "last day (Beijing time), inclusive"})
    # The cases behind a statistics figure (the `cases` URLs of GET /statistics): all of figure, part,
    # period_start and period_end, optionally as_of and the report's filters.
    figure = Text(40, metadata={"description": "statistics figure whose cases to list"})
    part = fields.String(validate=validate.OneOf(["numerator", "denominator"]))
    period_start = fields.Date()
    period_end = fields.Date(metadata={"description": "exclusive"})
    as_of = fields.AwareDateTime()
    area = Text(16, metadata={"description": "division or grid code prefix (with figure)"})
    worker = Text(200)
    sub_category = Text(100)
    process = Text(220)


class TaskSchema(Schema):
    id = fields.Integer(required=True)
    case_id = fields.Integer(required=True)
    element_id = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    grid_code = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    agency_level = fields.String(allow_none=True)
    state = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    actor = fields.String(allow_none=True)
    return_reason = fields.String(allow_none=True)


class WaitingSchema(Schema):
    element_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    due_at = fields.AwareDateTime(allow_none=True)


class CaseSummarySchema(Schema):
    id = fields.Integer(required=True)
    process_key = fields.String(required=True)
    definition_version = fields.Integer(required=True)
    status = fields.String(required=True)
    level = fields.String(allow_none=True)
    grid_code = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    title = fields.String(required=True)
    category = fields.String(allow_none=True)
    sub_category = fields.String(allow_none=True)
    urgency = fields.String(allow_none=True)
    supervision = fields.String(allow_none=True)
    overdue = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)


class CasePageSchema(PageSchema):
    items = fields.List(fields.Nested(CaseSummarySchema), required=True)


class CaseSchema(Schema):
    id = fields.Integer(required=True)
    process_key = fields.String(required=True)
    definition_version = fields.Integer(required=True)
    definition_id = fields.Integer(required=True)
    status = fields.String(required=True)
    level = fields.String(allow_none=True)
    grid_code = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    title = fields.String(required=True)
    category = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    data = fields.Dict(required=True, metadata={"description": "personal data masked unless your role needs it"})
    personal_data = fields.String(required=True, validate=validate.OneOf(["none", "masked", "unmasked"]),
                                  metadata={"description": "whether `data` names a reporter, and how it is shown"})
    open_tasks = fields.List(fields.Nested(TaskSchema), required=True)
    waiting = fields.List(fields.Nested(WaitingSchema), required=True)


class EventSchema(Schema):
    seq = fields.Integer(required=True)
    command = fields.String(required=True)
    actor = fields.String(required=True)
    role = fields.String(required=True)
    payload = fields.Dict(required=True)
    clock_time = fields.AwareDateTime(required=True)
    definition_id = fields.Integer(required=True)
    status_before = fields.String(allow_none=True)
    status_after = fields.String(required=True)
    effects = fields.Dict(required=True)
    state_hash = fields.String(required=True)
    prev_hash = fields.String(required=True)
    event_hash = fields.String(required=True)


class BrokenLinkSchema(Schema):
    seq = fields.Integer(required=True)
    reason = fields.String(required=True)


class HistorySchema(Schema):
    case_id = fields.Integer(required=True)
    chain_intact = fields.Boolean(required=True, metadata={"description": "every event links to the one before"})
    broken = fields.Nested(BrokenLinkSchema, allow_none=True, metadata={"description": "the first broken link"})
    events = fields.List(fields.Nested(EventSchema), required=True)


class SuperviseSchema(Schema):
    card = fields.String(required=True, validate=validate.OneOf(SUPERVISION_CARDS))
    note = Text(2000, load_default="")


class MessageSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    payload = FieldValues(load_default=dict)


class CorrelatedMessageSchema(MessageSchema):
    case_id = Id(required=True, metadata={"description": "the case the message correlates to"})


# -- tasks ------------------------------------------------------------------------------------------------

class TaskListArgs(PageArgs):
    case_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    all = fields.Boolean(load_default=False, metadata={"description": "include finished tasks"})
    role = fields.String(validate=validate.Length(max=40))
    unit = Text(100)
    grid = Text(40)
    level = fields.String(validate=validate.OneOf(LEVELS))


class TaskPageSchema(PageSchema):
    items = fields.List(fields.Nested(TaskSchema), required=True)


class CompleteSchema(Schema):
    data = FieldValues(load_default=dict, metadata={"description": "the task's form"})


class ReturnSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class RefusalSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(1, 2000),
                           metadata={"description": "why the work is off the county's grid matter list"})


class ExtensionRequestSchema(Schema):
    days = fields.Integer(strict=True, required=True, validate=validate.Range(1, 10))
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class ExtensionDecisionSchema(Schema):
    approve = fields.Boolean(required=True)
    comment = Text(2000, load_default="")


class RemindSchema(Schema):
    note = Text(2000, load_default="")
