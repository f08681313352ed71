"""statistics: figures and their indexes or rollups

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa
import engine.store.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

SPANS = "kind IN ('overdue', 'suspended')"


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("stat_worker", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("stat_round", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("stat_dispatched_at", engine.store.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("stat_late", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("stat_reworks", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("stat_overdue_since", engine.store.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("stat_suspended_since", engine.store.db.UTCDateTime(timezone=True),
                                   nullable=True))
    op.create_table(
        "stat_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", engine.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_at", engine.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", engine.store.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("grid_code", sa.String(length=40), nullable=True),
        sa.Column("unit", sa.String(length=100), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("sub_category", sa.String(length=100), nullable=True),
        sa.Column("process", sa.String(length=220), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("due_at", engine.store.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rules", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stat_facts_case_id", "stat_facts", ["case_id"])
    op.create_index("ix_stat_facts_period", "stat_facts", ["period_at", "kind"])
    op.create_index("ix_stat_facts_grid", "stat_facts", ["grid_code", "period_at"])
    op.create_index("ix_stat_facts_unit", "stat_facts", ["unit", "period_at"])
    op.create_index("ix_stat_facts_spans", "stat_facts", ["kind", "at"], postgresql_where=sa.text(SPANS),
                    sqlite_where=sa.text(SPANS))


def downgrade() -> None:
    op.drop_table("stat_facts")
    with op.batch_alter_table("cases") as batch:
        for column in ("stat_suspended_since", "stat_overdue_since", "stat_reworks", "stat_late",
                       "stat_dispatched_at", "stat_round", "stat_worker"):
            batch.drop_column(column)
