"""console: accounts for people, sign-in attempts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import engine.store.db  # noqa: F401

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('grid_code', sa.String(length=40), nullable=True),
    sa.Column('unit', sa.String(length=120), nullable=True),
    sa.Column('level', sa.String(length=20), nullable=True),
    sa.Column('area_code', sa.String(length=12), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', engine.store.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('password_set_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', engine.store.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sign_in_at', engine.store.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('sign_in_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sign_in_events_user', 'sign_in_events', ['user'])


def downgrade() -> None:
    op.drop_index('ix_sign_in_events_user', table_name='sign_in_events')
    op.drop_table('sign_in_events')
    op.drop_table('accounts')
