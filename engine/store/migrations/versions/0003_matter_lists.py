"""matter lists

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa
import engine.store.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('matter_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('sub_categories', engine.store.db.JSON, nullable=False),
    sa.Column('temporary', engine.store.db.JSON, nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('created_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('county_code', 'version', name='uq_matter_list_version'),
    sa.UniqueConstraint('county_code', 'effective_from', name='uq_matter_list_start')
    )
    with op.batch_alter_table('matter_lists', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matter_lists_county_code'), ['county_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('matter_lists', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matter_lists_county_code'))
    op.drop_table('matter_lists')
