"""The migrations build an empty database, match the models, and go down again."""

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from fieldapp import create_app
from fieldapp.extensions import db
from tests.conftest import PG_ADMIN_URL, _pg_url


@pytest.fixture
def empty_db_url(tmp_path):
    if not PG_ADMIN_URL:
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    name = f"fieldapp_mig_{os.getpid()}"
    admin = sa.create_engine(_pg_url(PG_ADMIN_URL, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield _pg_url(PG_ADMIN_URL, name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
