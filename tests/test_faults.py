"""Faults: the database drops its connections, refuses writes, or fails at commit.

The app must recover by itself where it can, show a clear, translated error page where it cannot,
and never leave half a warning behind.
"""

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from fieldapp import create_app
from fieldapp.extensions import db
from fieldapp.models import Event, OutboxMessage, Warning
from tests.conftest import _config

DB_ERROR_ZH = "数据库暂时无法保存数据"


@pytest.fixture
def intake(make):
    station = make.station("A")
    make.user(station, "officer", on_duty=True, lat=station.lat, lon=station.lon)
    _row, token = make.token()
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _counts() -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Warning, Event, OutboxMessage)
    }


def _postgres_only():
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL")


def test_postgres_connections_dropped_mid_run_app_recovers(app, client, make, intake):
    """pg_terminate_backend on every connection of our database; the next request works."""
    _postgres_only()
    assert client.post("/api/v1/warnings", json=make.intake_body(), headers=intake).status_code
    pool = db.engine.pool
    assert pool.checkedin() >= 1, "the pool should hold a connection to be killed"
    db.session.close()
    name = db.engine.url.database
    admin = sa.create_engine(db.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        ).scalar()
    admin.dispose()
    assert killed >= 1
    # No restart, no dispose: pool_pre_ping notices the dead connections and replaces them.
    resp = client.post("/api/v1/warnings", json=make.intake_body(), headers=intake)
    assert resp.status_code == 201
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"
    assert _counts()["warnings"] == 2


def test_pool_pre_ping_is_configured_for_postgres(monkeypatch, tmp_path):
    from fieldapp import config

    options = config.database_settings("postgresql://u@h/d")["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_pre_ping"] is True


@pytest.fixture
def read_only_app(app, database_url, instance_dir):
    """A second app on the same database, which refuses every write."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
        ro = create_app({**_config(url, instance_dir)})
        yield ro
        return
    ro = create_app(_config(database_url, instance_dir))
    with ro.app_context():
        # Every connection of this app only (not the whole server) is read-only.
        event.listen(
            db.engine,
            "connect",
            lambda conn, _rec: _set_read_only(conn),
        )
    yield ro
    with ro.app_context():
        db.engine.dispose()


def _set_read_only(dbapi_conn) -> None:
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    dbapi_conn.execute("SET default_transaction_read_only = on")
    dbapi_conn.autocommit = autocommit


def test_read_only_database_gives_a_clear_page_and_writes_nothing(app, read_only_app, make, intake):
    from flask.globals import _cv_app

    before = _counts()
    token = _cv_app.set(None)  # the read-only app runs its requests in contexts of its own
    try:
        client = read_only_app.test_client()
        api = client.post("/api/v1/warnings", json=make.intake_body(), headers=intake)
        page = client.post(
            "/lang", data={"lang": "en"}, headers={"Accept": "text/html"}
        )  # CSRF refuses it first: still no 500
        login = client.get("/login")
        csrf = login.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
        form = client.post(
            "/login", data={"username": "nobody", "password": "whatever-pass", "csrf_token": csrf}
        )
    finally:
        _cv_app.reset(token)
    assert api.status_code == 503
    assert DB_ERROR_ZH in api.get_json()["error"]
    assert api.headers["Retry-After"]
    assert page.status_code == 400
    # A failed login is bookkept (an event); on a read-only database that write fails: 503 page.
    assert form.status_code == 503
    html = form.get_data(as_text=True)
    assert DB_ERROR_ZH in html and "<html" in html
    db.session.expire_all()
    assert _counts() == before


def test_read_only_database_page_in_english(app, read_only_app, make, intake):
    from flask.globals import _cv_app

    token = _cv_app.set(None)
    try:
        client = read_only_app.test_client()
        client.set_cookie("lang", "en")
        resp = client.post(
            "/api/v1/warnings",
            json=make.intake_body(),
            headers={**intake, "Accept-Language": "en"},
        )
    finally:
        _cv_app.reset(token)
    assert resp.status_code == 503
    assert "Nothing was saved" in resp.get_json()["error"]


def test_failing_commit_mid_intake_leaves_nothing(app, client, make, intake):
    """The disk fills up at the commit: warning, events, offers and outbox all stay unwritten."""
    before = _counts()
    failed = []

    def fail(session):
        from flask import has_request_context, request

        # Only the intake request's own commit fails (the warning is flushed by then).
        if has_request_context() and request.path == "/api/v1/warnings":
            failed.append(True)
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database or disk is full"))

    from sqlalchemy.orm import Session

    event.listen(Session, "before_commit", fail)
    try:
        resp = client.post("/api/v1/warnings", json=make.intake_body(), headers=intake)
    finally:
        event.remove(Session, "before_commit", fail)
    assert failed
    assert resp.status_code == 503
    db.session.expire_all()
    assert _counts() == before
    # And once the disk has room again the same warning goes through.
    assert client.post("/api/v1/warnings", json=make.intake_body(), headers=intake).status_code


def test_failing_flush_mid_dispatch_leaves_nothing(app, client, make, intake, monkeypatch):
    """An error after the warning row was flushed (while dispatching) rolls everything back."""
    from fieldapp import dispatch

    before = _counts()

    def broken(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT INTO offers", {}, Exception("disk I/O error"))

    monkeypatch.setattr(dispatch, "announce_first", broken)
    resp = client.post("/api/v1/warnings", json=make.intake_body(), headers=intake)
    assert resp.status_code == 503
    db.session.expire_all()
    assert _counts() == before
