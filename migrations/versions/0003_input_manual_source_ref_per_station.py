"""a hand-entered warning's source_ref is unique within its station

Revision ID: 0003_input
Revises: 0002_board
Create Date: 2026-11-30 22:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003_input'
down_revision = '0002_board'
branch_labels = None
depends_on = None


def upgrade():
    # Races could have entered the same reference twice at one station: keep the first,
    # suffix the later ones with their id so the unique index can be built.
    op.execute(
        """
        UPDATE warnings SET source_ref = substr(source_ref, 1, 48) || '-dup-' || id
        WHERE token_id IS NULL AND EXISTS (
            SELECT 1 FROM warnings AS first
            WHERE first.token_id IS NULL AND first.station_id = warnings.station_id
              AND first.source_ref = warnings.source_ref AND first.id < warnings.id
        )
        """
    )
    with op.batch_alter_table('warnings', schema=None) as batch_op:
        batch_op.create_index(
            'uq_warnings_manual_station_source_ref',
            ['station_id', 'source_ref'],
            unique=True,
            sqlite_where=sa.text('token_id IS NULL'),
            postgresql_where=sa.text('token_id IS NULL'),
        )


def downgrade():
    with op.batch_alter_table('warnings', schema=None) as batch_op:
        batch_op.drop_index('uq_warnings_manual_station_source_ref')
