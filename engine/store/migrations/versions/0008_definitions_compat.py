"""definitions_compat: canonical content hashes, stored decisions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import engine.store.db  # noqa: F401

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A definition row is a process or a decision (a DMN file deployed alone). Content hashes of rows
    # deployed before stay as they were: a deploy compares against the canonical hash of the stored files.
    with op.batch_alter_table("definitions") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="process"))


def downgrade() -> None:
    with op.batch_alter_table("definitions") as batch:
        batch.drop_column("kind")
