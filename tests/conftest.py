"""The app, its database (SQLite, or PostgreSQL when FIELDAPP_TEST_DATABASE_URL says so), helpers.

The schema is built once per session by the Alembic migrations (so every run tests them) and
emptied after each test. PostgreSQL runs get a database of their own, created and dropped here,
so parallel runs and helpers never share rows.
"""

import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask.globals import _cv_app
from flask.testing import FlaskClient
from flask_migrate import upgrade

from fieldapp import clock, create_app
from fieldapp.auth import passwords
from fieldapp.extensions import db, limiter
from tests import factories

# The tests check the login rules, not argon2's cost: with the cheapest parameters the suite's
# thousands of password checks take milliseconds instead of minutes. Production keeps the
# library's defaults (fieldapp/auth/passwords.py).
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
passwords.DUMMY_HASH = passwords._hasher.hash("not-a-password")

PG_ADMIN_URL = os.environ.get("FIELDAPP_TEST_DATABASE_URL", "")

# Shared fixtures of their own modules: `field` (tests/fieldsetup.py), `push_service`
# (tests/pushservice.py), available to every test without importing them.
pytest_plugins = ["tests.fieldsetup", "tests.pushservice"]


def _pg_url(base: str, name: str) -> str:
    url = sa.engine.make_url(base).set(drivername="postgresql+psycopg")
    return url.set(database=name).render_as_string(hide_password=False)


# The longest tests first. pytest-xdist hands tests out in collection order, so a minutes-long
# race test collected near the end ran alone while the other workers idled.
LONGEST_FIRST = (
    "tests/test_races.py",
    "tests/test_fuzz_api.py",
    "tests/test_people_races.py",
    "tests/test_imports.py",
    "tests/test_login_throttle.py",
)


def pytest_collection_modifyitems(config, items):
    """Put the files of LONGEST_FIRST first, in that order; the rest keep theirs."""
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if not PG_ADMIN_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    name = f"fieldapp_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        _pg_url(PG_ADMIN_URL, sa.engine.make_url(PG_ADMIN_URL).database or "postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(PG_ADMIN_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def empty_db_url(tmp_path):
    """A database with no tables yet, for the migration tests."""
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


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("instance")


def _config(database_url: str, instance_dir) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_ENABLED": False,
        # Pages of many tests open the live streams: keep them short so none outlives its test.
        "STREAM_SECONDS": 2,
        "BOARD_STREAM_SECONDS": 2,
        "WORKER_IN_PROCESS": False,
        # Tests drive the worker by hand; tests/test_express.py turns the express send on.
        "EXPRESS_PUSH": False,
        "VAPID_PRIVATE_KEY_FILE": str(instance_dir / "vapid_private.pem"),
        "VAPID_SUBJECT": "mailto:test@example.org",
        "SERVER_NAME": "localhost",
    }


@pytest.fixture(scope="session")
def migrated(database_url, instance_dir):
    """Run the migrations once on the empty test database."""
    os.environ["FIELDAPP_INSTANCE_PATH"] = str(instance_dir)
    app = create_app(_config(database_url, instance_dir))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return True


@pytest.fixture
def app(migrated, database_url, instance_dir):
    app = create_app(_config(database_url, instance_dir))
    if app.config["RATELIMIT_ENABLED"]:
        limiter.reset()
    with app.app_context():
        yield app
        db.session.remove()
        _empty_all_tables()
        db.engine.dispose()


def _empty_all_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name != "postgresql":
        with db.engine.begin() as conn:
            for name in tables:
                conn.execute(sa.text(f"DELETE FROM {name}"))
        return
    # A browser test's server may still be finishing a request (a live stream ends within
    # STREAM_SECONDS) whose transaction holds rows or a table lock: end those sessions first,
    # and should one reconnect in between and deadlock with the clean-up, try again.
    # DELETE, children first, is ten times cheaper than TRUNCATE on tables this small (about
    # 10 ms against 100 ms, once per test); the events table refuses DELETE (its append-only
    # trigger), so it alone is truncated. Then every sequence starts again at 1.
    for attempt in range(5):
        try:
            with db.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
                for name in tables:
                    verb = "TRUNCATE" if name == "events" else "DELETE FROM"
                    conn.execute(sa.text(f"{verb} {name}"))
                conn.execute(
                    sa.text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'")
                )
            return
        except sa.exc.OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2)


class IsolatedClient(FlaskClient):
    """A test client whose requests run in app contexts of their own, as in production.

    The tests hold one app context open for their data; Flask 3.1 would reuse it for each
    request, sharing `g` and cached locale between requests. Here each request starts clean,
    the test's pending data is committed first, and the test sees fresh rows afterwards.
    """

    def open(self, *args, **kwargs):
        outer = _cv_app.get(None)
        if outer is None:
            return super().open(*args, **kwargs)
        db.session.commit()
        token = _cv_app.set(None)
        try:
            return super().open(*args, **kwargs)
        finally:
            _cv_app.reset(token)
            db.session.expire_all()


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    """Log a test client in and out, and fetch the CSRF token a page carries."""

    def __init__(self, client):
        self._client = client

    def csrf(self, path: str = "/login") -> str:
        html = self._client.get(path, follow_redirects=True).get_data(as_text=True)
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
        assert match, f"no csrf meta on {path}"
        return match.group(1)

    def login(self, username: str, password: str = factories.PASSWORD):
        token = self.csrf("/login")
        return self._client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

    def logout(self):
        return self._client.post("/logout", data={"csrf_token": self.csrf("/")})

    def post_json(self, path: str, body: dict, method: str = "POST"):
        return self._client.open(
            path, method=method, json=body, headers={"X-CSRFToken": self.csrf("/")}
        )


@pytest.fixture
def auth(client):
    return AuthActions(client)


class FakeClock:
    """A clock that moves only when told, so tests never sleep."""

    def __init__(self, start: datetime):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float = 0, **kwargs) -> datetime:
        self.current += timedelta(seconds=seconds, **kwargs)
        return self.current


@pytest.fixture
def fake_clock(monkeypatch):
    fake = FakeClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


@pytest.fixture
def make(app):
    """Test data factories bound to the app's session."""
    return factories
