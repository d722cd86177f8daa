"""live channel: NOTIFY on every new event, fired on commit of the writing transaction

Revision ID: 0004_live
Revises: 0004_parallel
Create Date: 2026-12-01 04:10:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004_live'
down_revision = '0004_parallel'
branch_labels = None
depends_on = None


def upgrade():
    # PostgreSQL only: SQLite has no NOTIFY (the live reader polls there). The notification is
    # queued in the inserting transaction and delivered only if it commits.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION events_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('fieldapp_events', NEW.id::text);
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER events_notify AFTER INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION events_notify()"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
    op.execute("DROP FUNCTION IF EXISTS events_notify()")
