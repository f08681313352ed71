"""hardening: checkpoint chain, idempotency in the command's transaction

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import engine.store.db  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Checkpoints are numbered in their own chain; those signed before are numbered in the order they were made.
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    conn = op.get_bind()
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM audit_checkpoints ORDER BY id"))]
    for number, checkpoint_id in enumerate(ids, start=1):
        conn.execute(sa.text("UPDATE audit_checkpoints SET seq = :seq WHERE id = :id"),
                     {"seq": number, "id": checkpoint_id})
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.create_unique_constraint("uq_audit_checkpoints_seq", ["seq"])
    # Idempotency records are now written by the command's own transaction; a claim of the old kind
    # ("running", taken before the command ran) says nothing about whether it committed.
    conn.execute(sa.text("DELETE FROM idempotency_records WHERE state = 'running'"))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_constraint("uq_audit_checkpoints_seq", type_="unique")
        batch.drop_column("seq")
