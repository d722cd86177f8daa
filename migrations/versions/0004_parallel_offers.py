"""high-risk warnings offered to several officers at once: the station's setting

Revision ID: 0004_parallel
Revises: 0003_command
Create Date: 2026-12-01 03:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_parallel'
down_revision = '0003_command'
branch_labels = None
depends_on = None


def upgrade():
    # Offer status "taken" needs no schema change (a plain string column).
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('parallel_offers_high', sa.Integer(), server_default='2', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_column('parallel_offers_high')
