"""Server-side sessions (#14 finding 7) and the forced password change (#12 item 5)."""

import re

import pytest
import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import Event, User
from tests import factories


@pytest.fixture(autouse=True)
def isolated_clients(app):
    from tests.conftest import IsolatedClient

    app.test_client_class = IsolatedClient


@pytest.fixture
def officer(make):
    station = make.station("A")
    user = make.user(station, "officer", "officer_a")
    make.user(station, "chief", "chief_a")
    db.session.commit()
    return user


def csrf(client) -> str:
    html = client.get("/login", follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def log_in(client, username="officer_a", password=factories.PASSWORD):
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def with_cookie(app, value: str):
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief


def test_logout_ends_a_copied_session_cookie(officer, app, client):
    """Finding 7: a cookie copied before logout must not work after it."""
    assert log_in(client).status_code == 302
    copied = session_cookie(client)
    assert with_cookie(app, copied).get("/field/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client)})
    thief = with_cookie(app, copied)
    resp = thief.get("/field/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert thief.get("/api/v1/me/stream").status_code == 401


def test_plain_logout_leaves_the_other_devices_logged_in(officer, app, client):
    other = app.test_client()
    log_in(client)
    log_in(other)
    client.post("/logout", data={"csrf_token": csrf(client)})
    assert other.get("/field/").status_code == 200


def test_logout_everywhere_ends_every_device(officer, app, client):
    other = app.test_client()
    log_in(client)
    log_in(other)
    copied = session_cookie(other)
    client.post("/logout/everywhere", data={"csrf_token": csrf(client)})
    assert other.get("/field/").status_code == 302
    assert with_cookie(app, copied).get("/field/").status_code == 302


@pytest.mark.parametrize(
    "user_key",
    ["99999999999999999999:1", "1:99999999999999999999", "abc:1", ":", "1", "²:1", "1:²"],
)
def test_hostile_session_contents_are_logged_out_not_500(officer, client, user_key):
    log_in(client)
    with client.session_transaction() as sess:
        sess["_user_id"] = user_key
    resp = client.get("/field/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_session_without_a_server_row_is_refused(officer, client):
    log_in(client)
    with client.session_transaction() as sess:
        sess["sid"] = "made-up-token"
    assert client.get("/field/").status_code == 302


def reset(app, username="officer_a") -> str:
    result = app.test_cli_runner().invoke(args=["reset-password", "--username", username])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_a_reset_password_forces_a_change_at_first_login(officer, app, client):
    one_time = reset(app)
    assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}", one_time)
    resp = log_in(client, password=one_time)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/password")
    # Nothing else is reachable until the password is changed.
    assert client.get("/field/").headers["Location"].endswith("/account/password")
    api = client.post(
        "/api/v1/me/duty", json={"status": "on_duty"}, headers={"X-CSRFToken": csrf(client)}
    )
    assert api.status_code == 403 and api.get_json()["code"] == "password_change_required"
    page = client.get("/account/password")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "一次性密码" in html and 'name="current_password"' not in html
    token = csrf(client)
    for bad, why in [
        ({"new_password": "short", "confirm_password": "short"}, "至少"),
        ({"new_password": "new-password-77", "confirm_password": "new-password-78"}, "不一致"),
        ({"new_password": one_time, "confirm_password": one_time}, "不能与旧密码相同"),
        ({"new_password": "officer_a-2026x", "confirm_password": "officer_a-2026x"}, "用户名"),
    ]:
        resp = client.post("/account/password", data={**bad, "csrf_token": token})
        assert resp.status_code == 422 and why in resp.get_data(as_text=True), why
        assert db.session.get(User, officer.id).must_change_password
    resp = client.post(
        "/account/password",
        data={
            "new_password": "my-own-pass-81",
            "confirm_password": "my-own-pass-81",
            "csrf_token": token,
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/field/")
    assert client.get("/field/").status_code == 200  # this session goes on
    client.post("/logout", data={"csrf_token": csrf(client)})
    assert log_in(client, password=one_time).status_code == 401
    assert log_in(client, password="my-own-pass-81").headers["Location"].endswith("/field/")
    kinds = [e.kind for e in db.session.scalars(sa.select(Event).order_by(Event.id))]
    assert "password_reset" in kinds and "password_changed" in kinds


def test_a_reset_ends_the_sessions_of_the_old_password(officer, app, client):
    log_in(client)
    reset(app)
    assert client.get("/field/").status_code == 302


def test_a_one_time_password_expires(officer, app, client, fake_clock):
    one_time = reset(app)
    fake_clock.advance(hours=73)
    resp = log_in(client, password=one_time)
    assert resp.status_code == 401 and "已过期" in resp.get_data(as_text=True)


def test_changing_ones_own_password_needs_the_current_one(officer, app, client):
    other = app.test_client()
    log_in(client)
    log_in(other)
    token = csrf(client)
    new = {"new_password": "brand-new-pass-5", "confirm_password": "brand-new-pass-5"}
    resp = client.post(
        "/account/password", data={**new, "current_password": "nope-nope-1", "csrf_token": token}
    )
    assert resp.status_code == 422 and "当前密码错误" in resp.get_data(as_text=True)
    resp = client.post(
        "/account/password",
        data={**new, "current_password": factories.PASSWORD, "csrf_token": token},
    )
    assert resp.status_code == 302
    assert client.get("/field/").status_code == 200
    assert other.get("/field/").status_code == 302  # the other device is logged out


def test_guessing_the_current_password_is_throttled(officer, client, fake_clock):
    log_in(client)
    token = csrf(client)
    new = {"new_password": "brand-new-pass-5", "confirm_password": "brand-new-pass-5"}
    codes = []
    for n in range(8):
        resp = client.post(
            "/account/password",
            data={**new, "current_password": f"guess-{n}-xxxx", "csrf_token": token},
        )
        codes.append("秒后再试" in resp.get_data(as_text=True))
    assert codes[:5] == [False] * 5 and all(codes[6:])
