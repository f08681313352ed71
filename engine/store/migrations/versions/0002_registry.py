"""registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa
import engine.store.db
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('divisions',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('supervision_phone', sa.String(length=40), nullable=True),
    sa.Column('created_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('divisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_divisions_parent_code'), ['parent_code'], unique=False)

    op.create_table('filings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('grid_code', sa.String(length=16), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('filings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_filings_grid_code'), ['grid_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_filings_kind'), ['kind'], unique=False)

    op.create_table('grid_workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('employment', sa.String(length=20), nullable=False),
    sa.Column('grid_code', sa.String(length=16), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('created_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grid_workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_workers_grid_code'), ['grid_code'], unique=False)

    op.create_table('units',
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('levels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('grids',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('grid_type', sa.String(length=1), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('boundary', sa.Text(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.Column('created_at', engine.store.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['divisions.code'], ),
    sa.ForeignKeyConstraint(['replaces_id'], ['grids.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grids_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_grids_community_code'), ['community_code'], unique=False)
        batch_op.create_index('uq_grids_current_code', ['code'], unique=True, postgresql_where=sa.text('effective_to IS NULL'), sqlite_where=sa.text('effective_to IS NULL'))



def downgrade() -> None:
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.drop_index('uq_grids_current_code', postgresql_where=sa.text('effective_to IS NULL'), sqlite_where=sa.text('effective_to IS NULL'))
        batch_op.drop_index(batch_op.f('ix_grids_community_code'))
        batch_op.drop_index(batch_op.f('ix_grids_code'))

    op.drop_table('grids')
    op.drop_table('units')
    with op.batch_alter_table('grid_workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_workers_grid_code'))

    op.drop_table('grid_workers')
    with op.batch_alter_table('filings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_filings_kind'))
        batch_op.drop_index(batch_op.f('ix_filings_grid_code'))

    op.drop_table('filings')
    with op.batch_alter_table('divisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_divisions_parent_code'))

    op.drop_table('divisions')
