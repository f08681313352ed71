"""instance_migration: moving running cases between definition versions

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import engine.store.db  # noqa: F401
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
    op.create_table('case_migrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('from_definition_id', sa.Integer(), nullable=False),
    sa.Column('to_definition_id', sa.Integer(), nullable=False),
    sa.Column('state_before', sa.Text(), nullable=False),
    sa.Column('pending_timers_before', json, nullable=False),
    sa.Column('tasks_before', json, nullable=False),
    sa.Column('timers_before', json, nullable=False),
    sa.Column('migrated_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('migrated_by', sa.String(length=200), nullable=False),
    sa.Column('reverted_seq', sa.Integer(), nullable=True),
    sa.Column('reverted_at', engine.store.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['from_definition_id'], ['definitions.id'], ),
    sa.ForeignKeyConstraint(['to_definition_id'], ['definitions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_case_migrations_case_id', 'case_migrations', ['case_id'], unique=False)
    op.create_index('ix_case_migrations_to_definition_id', 'case_migrations', ['to_definition_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_case_migrations_to_definition_id', table_name='case_migrations')
    op.drop_index('ix_case_migrations_case_id', table_name='case_migrations')
    op.drop_table('case_migrations')
