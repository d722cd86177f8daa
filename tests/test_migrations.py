"""The migrations build an empty database, match the models, and go down again."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from fieldapp import create_app
from fieldapp.extensions import db


def test_upgrade_from_empty_matches_models_and_downgrades(empty_db_url, tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": empty_db_url,
            "TESTING": True,
            "VAPID_PRIVATE_KEY_FILE": str(tmp_path / "v.pem"),
        }
    )
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        assert diff == [], diff
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"warnings", "offers", "events", "outbox", "users", "stations"} <= tables
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
