"""Tables. A case row holds the workflow instance state (the spec is stored once, on its definition)."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .db import JSON, UTCDateTime


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


# -- county matter lists (issue 4) --


# -- API: idempotency, access log (issue 5) --


# -- outbox for webhooks (issue 5) --


# -- audit checkpoints (issue 6) --
