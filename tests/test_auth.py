"""Login, logout, lockout, CSRF, session cookie flags, role and station checks."""

import pytest

from fieldapp.extensions import db
from fieldapp.models import Event


@pytest.fixture
def people(make):
    a = make.station("A")
    b = make.station("B", lat=28.0, lon=115.0)
    users = {
        "officer_a": make.user(a, "officer", "officer_a"),
        "aux_a": make.user(a, "auxiliary", "aux_a"),
        "chief_a": make.user(a, "chief", "chief_a"),
        "chief_b": make.user(b, "chief", "chief_b"),
        "admin": make.user(a, "admin", "root"),
    }
    db.session.commit()
    return users


def test_login_page_renders_in_chinese_by_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'lang="zh-CN"' in html
    assert "登录" in html
    assert '<meta name="csrf-token"' in html


def test_login_in_english_when_chosen(client, auth):
    token = auth.csrf()
    resp = client.post("/lang", data={"lang": "en", "csrf_token": token, "next": "/login"})
    assert resp.status_code == 302
    assert "lang=en" in resp.headers["Set-Cookie"]
    html = client.get("/login").get_data(as_text=True)
    assert 'lang="en"' in html and "Log in" in html


@pytest.mark.parametrize(
    ("username", "landing"),
    [("officer_a", "/field/"), ("aux_a", "/field/"), ("chief_a", "/board/"), ("root", "/board/")],
)
def test_login_lands_on_the_role_home(people, auth, username, landing):
    resp = auth.login(username)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(landing)


def test_session_cookie_is_httponly_and_lax(people, auth):
    resp = auth.login("officer_a")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_is_refused_and_logged(people, auth):
    resp = auth.login("officer_a", "wrong-password-1")
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.get_data(as_text=True)
    kinds = [e.kind for e in db.session.scalars(db.select(Event))]
    assert kinds == ["login_failed"]


def test_unknown_user_gets_the_same_message(people, auth):
    resp = auth.login("nobody", "whatever-password")
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.get_data(as_text=True)


def test_five_failures_do_not_lock_the_account(people, auth, fake_clock):
    """The old 15-minute lock-out is gone: the right password still works from here."""
    for _ in range(5):
        auth.login("officer_a", "wrong-password-1")
    resp = auth.login("officer_a")
    assert resp.status_code == 302
    assert "锁定" not in resp.get_data(as_text=True)


def test_login_events_recorded(people, auth):
    auth.login("officer_a")
    kinds = [e.kind for e in db.session.scalars(db.select(Event))]
    assert kinds == ["login"]


def test_login_without_csrf_is_refused(people, client):
    resp = client.post("/login", data={"username": "officer_a", "password": "correct-horse-42"})
    assert resp.status_code == 400
    assert "刷新" in resp.get_data(as_text=True)


def test_logout_needs_post_and_clears_site_data(people, client, auth):
    auth.login("officer_a")
    assert client.get("/logout").status_code == 405
    resp = auth.logout()
    assert resp.status_code == 302
    assert "storage" in resp.headers["Clear-Site-Data"]
    assert client.get("/field/").status_code == 302


def test_open_redirect_refused(people, client, auth):
    token = auth.csrf()
    resp = client.post(
        "/login?next=//evil.example/x",
        data={"username": "officer_a", "password": "correct-horse-42", "csrf_token": token},
    )
    assert resp.headers["Location"].endswith("/field/")


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/board/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


@pytest.mark.parametrize(
    ("username", "path", "status"),
    [
        ("officer_a", "/board/", 403),
        ("aux_a", "/intake/new", 403),
        ("chief_a", "/board/", 200),
        ("chief_a", "/field/", 403),
        ("root", "/field/", 200),
    ],
)
def test_roles_enforced(people, auth, client, username, path, status):
    auth.login(username)
    assert client.get(path).status_code == status


def test_chief_sees_only_own_station(people, make, auth, client):
    a, b = people["chief_a"].station, people["chief_b"].station
    make.warning(a, source_ref="A-ONE")
    wb = make.warning(b, source_ref="B-ONE")
    db.session.commit()
    auth.login("chief_a")
    html = client.get("/board/").get_data(as_text=True)
    assert f'id="w{wb.id}"' not in html
    auth.logout()
    auth.login("root")
    html = client.get("/board/").get_data(as_text=True)
    assert f'id="w{wb.id}"' in html


def test_password_change_ends_old_sessions(people, auth, client):
    auth.login("officer_a")
    assert client.get("/field/").status_code == 200
    people["officer_a"].session_version += 1
    db.session.commit()
    assert client.get("/field/").status_code == 302


def test_security_headers(client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"]
