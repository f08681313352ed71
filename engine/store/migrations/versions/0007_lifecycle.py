"""lifecycle: joint handling, duplicates, suspension, withdrawal, staged feedback

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import engine.store.db  # noqa: F401

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("suspended_at", engine.store.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("suspended_from", sa.String(length=40), nullable=True))
        batch.create_foreign_key("fk_cases_duplicate_of", "cases", ["duplicate_of"], ["id"])
        batch.create_index("ix_cases_duplicate_of", ["duplicate_of"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_duplicate_of")
        batch.drop_constraint("fk_cases_duplicate_of", type_="foreignkey")
        batch.drop_column("suspended_from")
        batch.drop_column("suspended_at")
        batch.drop_column("duplicate_of")
