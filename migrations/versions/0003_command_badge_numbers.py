"""badge numbers (警号) for users, unique per station

Revision ID: 0003_command
Revises: 0003_auth
Create Date: 2026-11-30 22:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_command'
down_revision = '0003_auth'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: existing users get their badge number later; NULLs never collide.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('badge_no', sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint('uq_users_station_badge_no', ['station_id', 'badge_no'])


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_station_badge_no', type_='unique')
        batch_op.drop_column('badge_no')
