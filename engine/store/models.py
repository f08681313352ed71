"""Tables. A case row holds the workflow instance state (the spec is stored once, on its definition)."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.store.db import JSON, UTCDateTime


class Base(DeclarativeBase):
    pass


class Definition(Base):
    __tablename__ = "definitions"
    __table_args__ = (sa.UniqueConstraint("key", "version", name="uq_definition_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(500), default="")
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    # {file name: XML text}: the main file and the files its call activities reach, as deployed.
    files: Mapped[dict] = mapped_column(JSON)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(sa.String(200))
    # process, or decision: a DMN file deployed on its own for business rule tasks to call
    kind: Mapped[str] = mapped_column(sa.String(20), default="process", server_default="process")


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("definitions.id"), index=True)
    process_key: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(40), index=True)
    level: Mapped[str | None] = mapped_column(sa.String(40))
    grid_code: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    unit: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    title: Mapped[str] = mapped_column(sa.String(500), default="")
    category: Mapped[str | None] = mapped_column(sa.String(100))
    sub_category: Mapped[str | None] = mapped_column(sa.String(100))
    urgency: Mapped[str | None] = mapped_column(sa.String(20))
    # 督办 by a higher level: normal → yellow card → red card.
    supervision: Mapped[str | None] = mapped_column(sa.String(20))
    state: Mapped[str] = mapped_column(sa.Text)
    state_hash: Mapped[str] = mapped_column(sa.String(64))
    last_seq: Mapped[int] = mapped_column(default=0)
    # The head of the history chain, kept here so a command links its event without a lookup.
    last_event_hash: Mapped[str] = mapped_column(sa.String(64))
    # {SpiffWorkflow task id: due ISO time} of this case's pending rows in `timers`, written with them,
    # so a command knows what to change there without reading the table.
    pending_timers: Mapped[dict] = mapped_column(JSON, default=dict)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # -- case columns: lifecycle (joint handling, duplicates, suspension) --
    # 重复件: the open matter this report duplicates; closed with it, never counted as a case of its own.
    duplicate_of: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", name="fk_cases_duplicate_of"),
                                                     index=True)
    # 挂账: since when the matter is suspended, and the status it resumes to.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_from: Mapped[str | None] = mapped_column(sa.String(40))

    # -- case columns: statistics --
    # What the statistics projection (engine/statistics/facts.py) carries from one command to the next: who
    # reported the matter, the current dispatch round and whether its deadline passed, open spans.
    stat_worker: Mapped[str | None] = mapped_column(sa.String(200))
    stat_round: Mapped[int] = mapped_column(default=0)
    stat_dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stat_late: Mapped[bool] = mapped_column(default=False)
    stat_reworks: Mapped[int] = mapped_column(default=0)
    stat_overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stat_suspended_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # -- case columns: instance migration --

    # Optimistic concurrency: of two commands on one case the second to commit fails and is reported
    # as a conflict instead of silently overwriting the first.
    __mapper_args__ = {"version_id_col": revision}


class HumanTask(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_open_role", "state", "role"),
        sa.UniqueConstraint("case_id", "spiff_task_id", name="uq_task_spiff_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    case: Mapped[Case] = relationship(lazy="raise")  # lets a new case and its first tasks insert in one flush
    spiff_task_id: Mapped[str] = mapped_column(sa.String(36))
    element_id: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(500))
    role: Mapped[str] = mapped_column(sa.String(40))
    grid_code: Mapped[str | None] = mapped_column(sa.String(40))
    unit: Mapped[str | None] = mapped_column(sa.String(100))
    agency_level: Mapped[str | None] = mapped_column(sa.String(40))
    state: Mapped[str] = mapped_column(sa.String(40))
    return_reason: Mapped[str | None] = mapped_column(sa.Text)
    # 延期: what the unit asked for, and the working days the agency granted so far.
    extension_days: Mapped[int | None]
    extension_reason: Mapped[str | None] = mapped_column(sa.Text)
    extension_granted_days: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(sa.String(200))
    revision: Mapped[int] = mapped_column(default=1)

    # A task row written from a stale read fails, whatever order a command read its rows in.
    __mapper_args__ = {"version_id_col": revision}


class HistoryEvent(Base):
    """Append-only; each row carries the previous row's hash so edits, deletions and reorderings show."""

    __tablename__ = "history_events"
    __table_args__ = (sa.UniqueConstraint("case_id", "seq", name="uq_history_case_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    seq: Mapped[int]
    command: Mapped[str] = mapped_column(sa.String(40))
    actor: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    clock_time: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("definitions.id"))
    status_before: Mapped[str | None] = mapped_column(sa.String(40))
    status_after: Mapped[str] = mapped_column(sa.String(40))
    # What the command changed: status moves and task moves, in order.
    effects: Mapped[dict] = mapped_column(JSON)
    state_hash: Mapped[str] = mapped_column(sa.String(64))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    event_hash: Mapped[str] = mapped_column(sa.String(64))


class Timer(Base):
    """Every waiting BPMN timer of every case: the database, not the scheduler, is the truth."""

    __tablename__ = "timers"
    __table_args__ = (
        # The sweep asks "which pending timers are due?": a partial index keeps that cheap however many
        # timers have fired before.
        sa.Index("ix_timers_pending_due", "due_at", postgresql_where=sa.text("state = 'pending'"),
                 sqlite_where=sa.text("state = 'pending'")),
        sa.Index("ix_timers_case", "case_id", "spiff_task_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"))
    case: Mapped[Case] = relationship(lazy="raise")
    spiff_task_id: Mapped[str] = mapped_column(sa.String(36))
    element_id: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(500))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(sa.String(20))  # pending, fired, cancelled, error
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.Text)


class CalendarVersion(Base):
    """A version of the working-day calendar; administrators add years and closures as new versions."""

    __tablename__ = "calendar_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), unique=True)
    data: Mapped[dict] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


# The registry (条例 §7–§11). Codes, not surrogate ids, link its tables: a grid's code is what every
# spreadsheet, case and routing rule names it by, and a row keeps the code it had when it was current.

class Division(Base):
    """A county (6 digits), township/street (9) or community/village (12) of the statistical division codes."""

    __tablename__ = "divisions"

    code: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[str] = mapped_column(sa.String(20))   # county, township, community
    parent_code: Mapped[str | None] = mapped_column(sa.String(12), index=True)
    # The number printed on grid notices for complaints about the grid's service (条例 §11); a community
    # without its own uses its township's, and so on up.
    supervision_phone: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class Grid(Base):
    """One grid as drawn between two dates. A redraw or recode closes the row and opens the next, so the
    registry can say what a code meant on any day, and a case keeps pointing at the grid it was reported in."""

    __tablename__ = "grids"
    __table_args__ = (
        # One current row per code; retired rows keep theirs.
        sa.Index("uq_grids_current_code", "code", unique=True, postgresql_where=sa.text("effective_to IS NULL"),
                 sqlite_where=sa.text("effective_to IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    grid_type: Mapped[str] = mapped_column(sa.String(1))
    households: Mapped[int]
    community_code: Mapped[str] = mapped_column(sa.ForeignKey("divisions.code"), index=True)
    boundary: Mapped[str] = mapped_column(sa.Text)
    effective_from: Mapped[date] = mapped_column(sa.Date)
    effective_to: Mapped[date | None] = mapped_column(sa.Date)
    # The row this one took over from, so a grid's history can be followed across recodes.
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("grids.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class GridWorker(Base):
    """A worker's assignment to a grid (条例 §10), dated like the grid rows it follows."""

    __tablename__ = "grid_workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    phone: Mapped[str] = mapped_column(sa.String(40))
    employment: Mapped[str] = mapped_column(sa.String(20))   # full_time, part_time
    grid_code: Mapped[str] = mapped_column(sa.String(16), index=True)
    effective_from: Mapped[date] = mapped_column(sa.Date)
    effective_to: Mapped[date | None] = mapped_column(sa.Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class UnitRow(Base):
    """A linkage department or service unit (条例 §16), kept in line with rules/data/units.csv."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(40))
    levels: Mapped[list] = mapped_column(JSON)


class Filing(Base):
    """备案: what the city is told about each change to the grids (条例 §7). Append-only."""

    __tablename__ = "filings"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    grid_code: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


# -- county matter lists --

class MatterListVersion(Base):
    """One adopted version of a county's grid matter list (条例 §13), written only when its change case is
    filed; never updated, so what was assignable on any past day stays answerable."""

    __tablename__ = "matter_lists"
    __table_args__ = (
        sa.UniqueConstraint("county_code", "version", name="uq_matter_list_version"),
        # Two versions starting on one day would leave open which is in force.
        sa.UniqueConstraint("county_code", "effective_from", name="uq_matter_list_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    version: Mapped[str] = mapped_column(sa.String(40))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    sub_categories: Mapped[list] = mapped_column(JSON)
    temporary: Mapped[list] = mapped_column(JSON)   # [{sub_category, reason, expires_on}]
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"))  # the approval case that filed it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


# -- API: idempotency, access log --

class IdempotencyRecord(Base):
    """The first outcome of a POST sent with an `Idempotency-Key`, so a retry (on any web worker) gets it
    back instead of acting twice. `fingerprint` covers method, path and body: reusing a key for a
    different request is refused."""

    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(sa.String(300))
    key: Mapped[str] = mapped_column(sa.String(200))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(20))  # running, done
    status_code: Mapped[int | None]
    response: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PersonalDataRead(Base):
    """Every read that showed a reporter's personal data unmasked (条例 §18). Append-only."""

    __tablename__ = "personal_data_reads"

    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40))
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    fields: Mapped[list] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(sa.String(200))  # what was read: the endpoint
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiKey(Base):
    """A key for the platform's system account. Only its SHA-256 is kept; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # the key's start, to tell keys apart in a list
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)



# -- outbox for webhooks --

class OutboxEvent(Base):
    """An event for the platform, written in the transaction of the command that caused it: a command
    that rolls back leaves none, and one that commits cannot lose it. Routed once to the subscriptions
    that want it, as one delivery each."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The router asks "which events are not routed yet?" and the delivery claim "does this case have
        # an earlier one still unrouted?": both stay cheap however many events were routed before.
        sa.Index("ix_outbox_unrouted", "case_id", "id", postgresql_where=sa.text("routed_at IS NULL"),
                 sqlite_where=sa.text("routed_at IS NULL")),
        # Only warnings carry one; a partial index costs the commands' events nothing.
        sa.Index("uq_outbox_once_key", "once_key", unique=True, postgresql_where=sa.text("once_key IS NOT NULL"),
                 sqlite_where=sa.text("once_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What receivers deduplicate by (delivery is at least once): a UUID, unique across databases and
    # restores. Not indexed: nothing looks events up by it, and every command writes events.
    uid: Mapped[str] = mapped_column(sa.String(36))
    kind: Mapped[str] = mapped_column(sa.String(40))
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"))
    # The task by its SpiffWorkflow id, known before a new task's row is written, so the command's one
    # flush is kept; the row id that receivers see is looked up when the event is sent.
    task_spiff_id: Mapped[str | None] = mapped_column(sa.String(36))
    payload: Mapped[dict] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the command's clock
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)  # wall time of the write
    # Events not caused by a command (a warning) name what makes them happen once.
    once_key: Mapped[str | None] = mapped_column(sa.String(200))
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    # Kept as given: the HMAC needs it. Whoever reads the database can read it (see README).
    secret: Mapped[str] = mapped_column(sa.String(200))
    events: Mapped[list | None] = mapped_column(JSON)  # event kinds wanted; None: all
    active: Mapped[bool] = mapped_column(default=True)
    # Events up to this id happened before the subscription existed and are not sent to it.
    after_event_id: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class WebhookDelivery(Base):
    """One event for one subscription, so one receiver that is down holds up no other."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_delivery_event_subscription"),
        sa.Index("ix_deliveries_due", "next_attempt_at", postgresql_where=sa.text("state = 'pending'"),
                 sqlite_where=sa.text("state = 'pending'")),
        # "Is an earlier event of this case still pending for this receiver?": per-case order.
        sa.Index("ix_deliveries_case_order", "subscription_id", "case_id", "event_id",
                 postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox_events.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    case_id: Mapped[int]
    state: Mapped[str] = mapped_column(sa.String(20))  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A claim is a lease: the HTTP call happens outside any transaction (SQLite's writer lock is never
    # held across the network), and a delivery process that dies mid-send lets the lease run out.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(36))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)



# -- audit checkpoints --

class AuditCheckpoint(Base):
    """A signed snapshot of every case's history head, so a chain rewritten with fresh hashes, truncated
    or deleted by someone with database access but not the key no longer matches (docs/audit.md)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (sa.UniqueConstraint("seq", name="uq_audit_checkpoints_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    # Which key signed it (a digest of the key, never the key): verify names a key that does not fit.
    key_id: Mapped[str] = mapped_column(sa.String(16))
    case_count: Mapped[int]
    # [[case id, last seq, head event hash], ...] in case order: what the signature covers.
    heads: Mapped[list] = mapped_column(JSON)
    # Each checkpoint signs the one before it, so removing one from the middle shows.
    prev_signature: Mapped[str | None] = mapped_column(sa.String(64))
    # Its number in the checkpoints' own chain (1, 2, 3 …), signed since migration 0011.
    seq: Mapped[int | None] = mapped_column(sa.Integer)
    signature: Mapped[str] = mapped_column(sa.String(64))


class RuleTableVersion(Base):
    """Every version of a rules table the engine has run with (time limits, routing), kept by version so a
    replay of an old case computes its deadlines and units with the table it used."""

    __tablename__ = "rule_table_versions"
    __table_args__ = (sa.UniqueConstraint("kind", "version", name="uq_rule_table_kind_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))       # time_limits, routing
    version: Mapped[str] = mapped_column(sa.String(40))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    files: Mapped[dict] = mapped_column(JSON)               # {file name: text}, as shipped
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- lifecycle: joint handling, duplicates, suspension, withdrawal --
# (tables of this capability go here)


# -- definitions: canonical forms, stored decisions --
# (tables of this capability go here)


# -- statistics --

class StatFact(Base):
    """One happening that a figure counts (a report, a dispatch, a closing on time or late, a span of being
    overdue or suspended), written by the command that caused it, in its transaction, and pointing at its
    history event (case, seq). Append-only except `until`, set once when a span ends. The dimensions are
    copied in as they were at the time, so a later redraw or re-dispatch does not move a past figure."""

    __tablename__ = "stat_facts"
    __table_args__ = (
        sa.Index("ix_stat_facts_period", "period_at", "kind"),
        sa.Index("ix_stat_facts_grid", "grid_code", "period_at"),
        sa.Index("ix_stat_facts_unit", "unit", "period_at"),
        # Open and closed spans by their start: the stock figures at a period's end.
        sa.Index("ix_stat_facts_spans", "kind", "at", postgresql_where=sa.text("kind IN ('overdue', 'suspended')"),
                 sqlite_where=sa.text("kind IN ('overdue', 'suspended')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    seq: Mapped[int]                      # the history event that recorded it
    kind: Mapped[str] = mapped_column(sa.String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)          # when it happened (a span: when it began)
    period_at: Mapped[datetime] = mapped_column(UTCDateTime)   # the moment that decides its period
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a span's end; NULL while open
    grid_code: Mapped[str | None] = mapped_column(sa.String(40))
    unit: Mapped[str | None] = mapped_column(sa.String(100))
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    category: Mapped[str | None] = mapped_column(sa.String(100))
    sub_category: Mapped[str | None] = mapped_column(sa.String(100))
    process: Mapped[str] = mapped_column(sa.String(220))       # process key and version, "grid_matter:3"
    round: Mapped[int] = mapped_column(default=0)
    on_time: Mapped[bool | None]          # the fact's verdict: on time, passed, satisfied
    amount: Mapped[float | None]          # working hours, extension days
    n: Mapped[int] = mapped_column(default=0)  # reworks in the round (closed), first approval (extension)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rules: Mapped[str | None] = mapped_column(sa.String(200))   # rule versions the verdict used


# -- console: accounts for people --
class Account(Base):
    """A person who signs in to the console. Role and scope are those of the API's `Principal`; only an
    argon2 hash of the password is kept. `session_version` moves on disable and password reset, which
    ends every session signed in before."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    role: Mapped[str] = mapped_column(sa.String(40))
    grid_code: Mapped[str | None] = mapped_column(sa.String(40))
    unit: Mapped[str | None] = mapped_column(sa.String(120))
    level: Mapped[str | None] = mapped_column(sa.String(20))
    area_code: Mapped[str | None] = mapped_column(sa.String(12))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    session_version: Mapped[int] = mapped_column(default=1)
    failed_attempts: Mapped[int] = mapped_column(default=0)   # consecutive, since the last good sign-in
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    password_set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInEvent(Base):
    """The access log of the console: every sign-in, failed attempt, lock-out and sign-out."""

    __tablename__ = "sign_in_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(sa.String(200), index=True)
    event: Mapped[str] = mapped_column(sa.String(20))  # signed_in, failed, locked, signed_out, refused
    address: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[str] = mapped_column(sa.String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- hardening: checkpoint chain --
# (tables of this capability go here)


# -- instance migration: plans and moves --

class CaseMigration(Base):
    """One move of a case to another version of its definition, with what a revert puts back: the stored
    state, the timer index entries and the open tasks' element names as they were just before the move.
    Its `migrated` history event (seq) is the proof; this row is what lets `revert` undo it exactly while
    the case has not moved on."""

    __tablename__ = "case_migrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    seq: Mapped[int]                              # the `migrated` event
    from_definition_id: Mapped[int] = mapped_column(sa.ForeignKey("definitions.id"))
    to_definition_id: Mapped[int] = mapped_column(sa.ForeignKey("definitions.id"), index=True)
    state_before: Mapped[str] = mapped_column(sa.Text)
    pending_timers_before: Mapped[dict] = mapped_column(JSON)
    # [[SpiffWorkflow task id, element id, name]] of the tasks whose element was renamed; [[SpiffWorkflow task
    # id, element id]] of the pending timers it renamed.
    tasks_before: Mapped[list] = mapped_column(JSON)
    timers_before: Mapped[list] = mapped_column(JSON)
    migrated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    migrated_by: Mapped[str] = mapped_column(sa.String(200))
    reverted_seq: Mapped[int | None]
    reverted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# -- performance --
# (tables of this capability go here)
