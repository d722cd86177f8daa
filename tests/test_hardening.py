"""Hardening: HSTS behind HTTPS, session expiry, log out everywhere, revoked tokens, password
rules, append-only events (by code scan and, on PostgreSQL, by trigger)."""

import ast
import re
from pathlib import Path

import itsdangerous
import pytest
import sqlalchemy as sa

from fieldapp import create_app
from fieldapp.extensions import db
from fieldapp.models import Event, IntakeToken, User
from fieldapp.models.events import AppendOnlyError
from tests.conftest import _config

FIELDAPP = Path(__file__).resolve().parent.parent / "fieldapp"


@pytest.fixture
def officer(make):
    station = make.station("A")
    user = make.user(station, "officer", "h_officer")
    db.session.commit()
    return user


# --- HSTS and the proxy ---------------------------------------------------------------------


def test_no_hsts_over_plain_http(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_forwarded_proto_ignored_without_proxy_fix(client):
    resp = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in resp.headers


def test_hsts_behind_https_proxy(app, database_url, instance_dir):
    proxied = create_app({**_config(database_url, instance_dir), "PROXY_FIX": True})
    client = proxied.test_client()
    resp = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_proxy_fix_is_off_by_default(monkeypatch, tmp_path):
    from fieldapp import config

    monkeypatch.delenv("FIELDAPP_PROXY_FIX", raising=False)
    assert config.load(str(tmp_path))["PROXY_FIX"] is False
    monkeypatch.setenv("FIELDAPP_PROXY_FIX", "1")
    assert config.load(str(tmp_path))["PROXY_FIX"] is True


def test_sql_errors_never_quote_parameters(tmp_path):
    from fieldapp import config

    for url in ("sqlite:////tmp/x.db", "postgresql://u@h/d"):
        options = config.database_settings(url)["SQLALCHEMY_ENGINE_OPTIONS"]
        assert options["hide_parameters"] is True


# --- sessions -------------------------------------------------------------------------------


def test_session_expires_after_its_lifetime(app, officer, auth, client, monkeypatch):
    assert auth.login("h_officer").status_code == 302
    assert client.get("/field/").status_code == 200
    lifetime = app.permanent_session_lifetime.total_seconds()
    assert lifetime == 12 * 3600
    real = itsdangerous.timed.TimestampSigner.get_timestamp

    def later(self):
        return real(self) + int(lifetime) + 60

    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", later)
    resp = client.get("/field/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_session_still_valid_within_lifetime(app, officer, auth, client, monkeypatch):
    auth.login("h_officer")
    real = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: real(self) + 11 * 3600
    )
    assert client.get("/field/").status_code == 200


def test_session_cookie_is_permanent_with_expiry(officer, auth):
    cookie = auth.login("h_officer").headers["Set-Cookie"]
    assert "Expires=" in cookie


def test_log_out_everywhere_ends_other_devices(app, officer, client):
    from tests.conftest import AuthActions, IsolatedClient

    app.test_client_class = IsolatedClient
    phone, tablet = app.test_client(), app.test_client()
    phone_auth, tablet_auth = AuthActions(phone), AuthActions(tablet)
    phone_auth.login("h_officer")
    tablet_auth.login("h_officer")
    assert tablet.get("/field/").status_code == 200
    html = phone.get("/field/").get_data(as_text=True)
    assert "/logout/everywhere" in html  # reachable from every page
    resp = phone.post("/logout/everywhere", data={"csrf_token": phone_auth.csrf("/field/")})
    assert resp.status_code == 302
    assert "storage" in resp.headers["Clear-Site-Data"]
    assert tablet.get("/field/").status_code == 302
    assert phone.get("/field/").status_code == 302
    assert db.session.get(User, officer.id).session_version == 2
    kinds = [e.kind for e in db.session.scalars(sa.select(Event).order_by(Event.id))]
    assert kinds[-1] == "logout_everywhere"
    assert phone_auth.login("h_officer").status_code == 302  # a fresh login works again


# --- intake tokens --------------------------------------------------------------------------


def test_revoked_token_gets_401(make, client, runner):
    station = make.station("A")
    make.user(station, "officer", on_duty=True, lat=station.lat, lon=station.lon)
    _row, token = make.token(name="centre")
    _row2, other = make.token(name="other")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/warnings", json=make.intake_body(), headers=headers).status_code
    assert (
        client.post("/api/v1/warnings", json=make.intake_body(), headers=headers).status_code == 201
    )
    result = runner.invoke(args=["revoke-token", "--name", "centre"])
    assert result.exit_code == 0, result.output
    assert "revoked" in result.output
    db.session.expire_all()
    resp = client.post("/api/v1/warnings", json=make.intake_body(), headers=headers)
    assert resp.status_code == 401
    other_headers = {"Authorization": f"Bearer {other}"}
    assert client.get("/api/v1/warnings/1", headers=headers).status_code == 401
    assert (
        client.post("/api/v1/warnings", json=make.intake_body(), headers=other_headers).status_code
        == 201
    )
    assert db.session.scalar(sa.select(IntakeToken).where(IntakeToken.name == "centre")).revoked_at
    assert "token_revoked" in [e.kind for e in db.session.scalars(sa.select(Event))]


def test_revoke_token_by_id_and_errors(make, runner):
    row, _token = make.token(name="by-id")
    db.session.commit()
    assert runner.invoke(args=["revoke-token"]).exit_code != 0
    assert runner.invoke(args=["revoke-token", "--name", "nope"]).exit_code != 0
    result = runner.invoke(args=["revoke-token", "--id", str(row.id)])
    assert result.exit_code == 0, result.output
    # Already revoked: nothing live matches any more.
    assert runner.invoke(args=["revoke-token", "--id", str(row.id)]).exit_code != 0


def test_tokens_are_stored_hashed(make, runner):
    make.station("A")
    db.session.commit()
    result = runner.invoke(args=["create-token", "--name", "hashcheck"])
    plaintext = result.output.strip().splitlines()[0]
    row = db.session.scalar(sa.select(IntakeToken).where(IntakeToken.name == "hashcheck"))
    assert plaintext.startswith("fa_") and plaintext not in row.token_hash
    assert len(row.token_hash) == 64


# --- password rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("short-1", False),  # under 10 characters
        ("xx_newcop_xx", False),  # contains the username
        ("aaaaaaaaaaaaab", False),  # too few different characters
        ("long-enough-pass-9", True),
    ],
)
def test_create_user_enforces_password_rules(make, runner, password, ok):
    make.station("PW")
    db.session.commit()
    result = runner.invoke(
        args=["create-user", "--username", "newcop", "--role", "officer", "--station", "PW"],
        input=password + "\n",
    )
    created = db.session.scalar(sa.select(User).where(User.username == "newcop"))
    if ok:
        assert result.exit_code == 0, result.output
        assert created is not None and created.password_hash.startswith("$argon2id$")
    else:
        assert result.exit_code != 0
        assert created is None


# --- the event log is append-only -----------------------------------------------------------

_RAW_SQL = re.compile(r"\b(update\s+events\b|delete\s+from\s+events\b|truncate\b[^;]*\bevents\b)")


def append_only_violations(source: str, filename: str = "<src>") -> list[str]:
    """Places in `source` that could change or remove events: ORM update/delete of Event,
    session.delete() of something named like an event, assignments to an event's attributes,
    raw SQL touching the events table. (At run time the ORM guard in models/events.py and the
    PostgreSQL trigger catch what a name-based scan cannot.)"""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0] if node.args else None
            if name in ("update", "delete") and isinstance(first, ast.Name) and first.id == "Event":
                found.append(f"{filename}:{node.lineno}: {name}(Event)")
            if (
                name == "delete"
                and isinstance(func, ast.Attribute)
                and "session" in ast.unparse(func.value)
                and first is not None
                and "event" in ast.unparse(first).lower()
            ):
                found.append(f"{filename}:{node.lineno}: session.delete() of an event")
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "__table__"
            and isinstance(node.value, ast.Name)
            and node.value.id == "Event"
        ):
            found.append(f"{filename}:{node.lineno}: Event.__table__ (core access)")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _RAW_SQL.search(node.value.lower())
        ):
            found.append(f"{filename}:{node.lineno}: raw SQL on events")
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in ("event", "ev", "evt")
                ):
                    found.append(f"{filename}:{node.lineno}: assignment to {target.value.id}.*")
    return found


def test_no_code_path_updates_or_deletes_events():
    violations = []
    for path in sorted(FIELDAPP.rglob("*.py")):
        violations += append_only_violations(path.read_text(), str(path.relative_to(FIELDAPP)))
    assert not violations, "the event log must stay append-only:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "snippet",
    [
        "db.session.execute(sa.update(Event).values(kind='x'))",
        "db.session.execute(sa.delete(Event))",
        "db.session.delete(event)",
        "db.session.delete(warning_events[0])",
        "db.session.execute(sa.text('DELETE FROM events WHERE id = 1'))",
        "conn.execute('update events set data = 1')",
        "event.kind = 'other'",
        "db.session.execute(Event.__table__.delete())",
    ],
)
def test_the_scan_catches_violations(snippet):
    assert append_only_violations(snippet)


def test_orm_refuses_to_change_or_delete_an_event_on_any_database(make):
    station = make.station("A")
    db.session.add(Event(kind="probe", station_id=station.id, data={}))
    db.session.commit()
    event = db.session.scalar(sa.select(Event))
    event.kind = "changed"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.scalar(sa.select(Event)))
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(sa.select(Event.kind)) == "probe"


def test_events_trigger_refuses_update_and_delete_on_postgresql(make):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    station = make.station("A")
    db.session.add(Event(kind="probe", station_id=station.id, data={}))
    db.session.commit()
    for statement in ("UPDATE events SET kind = 'changed'", "DELETE FROM events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(sa.text(statement))
        db.session.rollback()
    assert db.session.scalar(sa.select(Event.kind)) == "probe"
