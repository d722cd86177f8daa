"""Login throttling (#14 finding 6, #12 item 5): per account + address with growing waits, no
lock-out an attacker can use as a weapon, and no difference between known and unknown accounts.
"""

import os
import re
import threading

import argon2
import pytest
import sqlalchemy as sa

from fieldapp import refusals
from fieldapp.auth import passwords
from fieldapp.extensions import db
from fieldapp.models import Event
from tests import factories

# Modules new with the throttle are imported inside the tests that use them, so the HTTP-level
# tests of this file also run (and fail, as they should) against the code before it.

OFFICE = "10.1.1.5"  # the station's NAT address
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def isolated_clients(app):
    """Every client of these tests runs its requests in app contexts of their own."""
    from tests.conftest import IsolatedClient

    app.test_client_class = IsolatedClient


@pytest.fixture
def rate_limits(app):
    """Flask-Limiter on, as deployed (the suite runs with it off); `app.config` tunes it."""
    from fieldapp.extensions import limiter

    app.config["RATELIMIT_ENABLED"] = True
    limiter.enabled = True
    limiter.init_app(app)
    limiter.reset()
    yield app.config
    limiter.enabled = False


@pytest.fixture
def station(make):
    return make.station("A")


@pytest.fixture
def officer(make, station):
    user = make.user(station, "officer", "officer_a")
    db.session.commit()
    return user


def csrf(client) -> str:
    html = client.get("/login", follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def attempt(client, username, password=factories.PASSWORD, addr=OFFICE):
    """One login POST from `addr`; a client logged in already is logged out first."""
    token = csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": addr},
    )


def message(resp) -> str:
    html = resp.get_data(as_text=True)
    found = re.search(r'<p class="error">([^<]*)</p>', html)
    return found.group(1) if found else ""


@pytest.fixture
def hash_calls(monkeypatch):
    """Every password check: the argon2 parameters of the hash it checked against."""
    calls = []
    real = passwords.verify_password

    def counting(password_hash, password):
        calls.append(argon2.extract_parameters(password_hash))
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return calls


def test_wrong_passwords_from_elsewhere_do_not_lock_the_officer_out(
    officer, client, app, fake_clock
):
    """Finding 6: today five wrong passwords from anywhere lock the account for 15 minutes."""
    attacker = app.test_client()
    statuses = [
        attempt(attacker, "officer_a", "guess-password-1", ATTACKER).status_code for _ in range(8)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    assert attempt(client, "officer_a").status_code == 302


def test_a_distributed_guess_slows_strangers_but_not_the_officers_phone(
    officer, client, app, fake_clock
):
    phone = app.test_client()
    assert attempt(phone, "officer_a", addr="100.64.0.9").status_code == 302  # known from now on
    phone.post("/logout", data={"csrf_token": csrf(phone)})
    # 25 addresses, 4 guesses each: no address's own bucket fills, the account's does.
    for n in range(25):
        bot = app.test_client()
        for _ in range(4):
            attempt(bot, "officer_a", "guess-password-1", f"198.51.100.{n}")
    # A new device at a new address waits...
    stranger = app.test_client()
    resp = attempt(stranger, "officer_a", addr="192.0.2.200")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    # ...the officer's own phone, on a new mobile address, gets straight in.
    assert attempt(phone, "officer_a", addr="100.64.7.7").status_code == 302


def test_waits_grow_from_thirty_seconds_to_fifteen_minutes(officer, client, fake_clock):
    waits = []
    for _ in range(5):
        assert attempt(client, "officer_a", "wrong-password-1").status_code == 401
    for _ in range(8):
        resp = attempt(client, "officer_a", "wrong-password-1")
        assert resp.status_code == 429
        wait = int(resp.headers["Retry-After"])
        waits.append(wait)
        # Asking again before the wait is over changes nothing and says the same.
        again = attempt(client, "officer_a", "wrong-password-1")
        assert again.status_code == 429 and int(again.headers["Retry-After"]) == wait
        fake_clock.advance(wait)
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]
    # The right password after the wait: in, and the bucket starts afresh.
    assert attempt(client, "officer_a").status_code == 302


def test_the_page_says_when_to_try_again(officer, client, fake_clock):
    for _ in range(5):
        attempt(client, "officer_a", "wrong-password-1")
    resp = attempt(client, "officer_a", "wrong-password-1")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "30"
    assert "用户名或密码错误" in html and "30 秒后再试" in html
    # 02:00:30 UTC is 10:00:30 in Asia/Shanghai.
    assert "10:00:30" in html
    assert "锁定" not in html


def test_the_right_password_during_a_wait_is_not_even_checked(
    officer, client, fake_clock, hash_calls
):
    for _ in range(6):
        attempt(client, "officer_a", "wrong-password-1")
    checked = len(hash_calls)
    resp = attempt(client, "officer_a")
    assert resp.status_code == 429
    assert len(hash_calls) == checked  # no answer about the password while waiting


def test_known_and_unknown_accounts_take_the_same_path(officer, app, fake_clock, hash_calls):
    """Same statuses, same messages, one hash check each with the same argon2 parameters, and
    the same number of SQL statements: nothing tells an existing account from a made-up one."""
    real_params = argon2.extract_parameters(officer.password_hash)
    statements = []

    def count(*_args):
        statements.append(1)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    runs = {}
    try:
        for name in ("officer_a", "no_such_user"):
            client = app.test_client()
            csrf(client)
            results = []
            for _ in range(8):
                hash_calls.clear()
                statements.clear()
                resp = attempt(client, name, "wrong-password-1")
                results.append(
                    (
                        resp.status_code,
                        message(resp),
                        resp.headers.get("Retry-After"),
                        list(hash_calls),
                        len(statements),
                    )
                )
            runs[name] = results
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert runs["officer_a"] == runs["no_such_user"]
    checks = [r[3] for r in runs["officer_a"]]
    assert checks[:6] == [[real_params]] * 6  # five free failures and the one that starts a wait
    assert checks[6:] == [[], []]  # waiting: no check at all
    assert all("锁定" not in r[1] for r in runs["no_such_user"])


def test_dummy_hash_matches_real_hash_parameters(officer):
    assert argon2.extract_parameters(passwords.DUMMY_HASH) == argon2.extract_parameters(
        passwords.hash_password("another-password-9")
    )


def test_a_shift_behind_one_nat_address_logs_in_at_shift_change(app, make, station, rate_limits):
    """#12 item 5: 10 logins a minute per address stopped a station's shift at the door."""
    names = [make.user(station, "officer", f"shift{n:02d}").username for n in range(40)]
    db.session.commit()
    statuses = []
    for n, name in enumerate(names):
        client = app.test_client()
        if n % 4 == 0:  # every fourth officer mistypes once first
            assert attempt(client, name, "typo-password-1").status_code == 401
        statuses.append(attempt(client, name).status_code)
    assert statuses == [302] * 40


def test_a_flood_from_one_address_gets_429_with_retry_after(app, officer, rate_limits):
    rate_limits["LOGIN_RATE_LIMIT"] = "3/minute"
    client = app.test_client()
    for _ in range(3):
        attempt(client, "officer_a", "wrong-password-1")
    resp = attempt(client, "officer_a", "wrong-password-1")
    assert resp.status_code == 429
    wait = int(resp.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert re.search(r"请 ?\d+ ?秒后再试", resp.get_data(as_text=True))


def test_throttle_keys_hold_neither_username_nor_address(officer, client, fake_clock):
    from fieldapp.models import LoginThrottle

    attempt(client, "my-secret-password-typed-here", "x-password-1", OFFICE)
    rows = db.session.scalars(sa.select(LoginThrottle)).all()
    assert rows
    for row in rows:
        text = f"{row.key} {row.account_key}"
        assert "secret" not in text and OFFICE not in text


def test_ipv6_addresses_count_per_64(officer, app, fake_clock):
    from fieldapp.auth import throttle

    assert throttle.address_group("2001:db8:1:2:aaaa::1") == throttle.address_group(
        "2001:db8:1:2:bbbb::9"
    )
    assert throttle.address_group("::ffff:10.1.1.5") == "10.1.1.5"
    assert throttle.address_group("not an address") == "unknown"
    client = app.test_client()
    for n in range(6):
        attempt(client, "officer_a", "wrong-password-1", f"2001:db8:1:2::{n + 1}")
    assert attempt(client, "officer_a", addr="2001:db8:1:2::99").status_code == 429


def test_a_forged_known_device_cookie_is_ignored(officer, app, fake_clock):
    from fieldapp.auth import devices

    client = app.test_client()
    client.set_cookie(devices.COOKIE, "eyJmb3JnZWQiOnRydWV9.forged.signature")
    for n in range(25):
        attempt(app.test_client(), "officer_a", "wrong-password-1", f"198.51.100.{n}")
    assert attempt(client, "officer_a", addr="192.0.2.1").status_code == 429


def test_events_record_failures_without_personal_data(officer, client, fake_clock):
    attempt(client, "officer_a", "wrong-password-1")
    attempt(client, "nobody_here", "wrong-password-1")
    events = db.session.scalars(sa.select(Event).order_by(Event.id)).all()
    assert [(e.kind, e.actor_id, e.data) for e in events] == [
        ("login_failed", officer.id, {"reason": "bad_password"}),
        ("login_failed", None, {"reason": "unknown"}),
    ]


@pytest.mark.parametrize("workers", [12])
def test_parallel_guesses_cannot_slip_past_the_wait(app, officer, workers, hash_calls):
    """Each attempt is charged before its check: a burst at the threshold gets one more check,
    not one per request in flight. Repeated, on SQLite and PostgreSQL."""
    from fieldapp import clock
    from fieldapp.auth import login, throttle
    from fieldapp.models import LoginThrottle

    runs = 100 if os.environ.get("FIELDAPP_TEST_DATABASE_URL") else 20
    for run in range(runs):
        db.session.execute(sa.delete(LoginThrottle))
        db.session.commit()
        # Four failures already (charged as a failed login charges them, without the four
        # password checks): one free attempt left, then a wait.
        buckets = throttle.buckets_for("officer_a", OFFICE, known_device=False)
        for _ in range(4):
            assert throttle.charge(buckets, clock.now())
        db.session.commit()
        hash_calls.clear()
        barrier = threading.Barrier(workers)
        outcomes = []

        def guess(barrier=barrier, outcomes=outcomes):
            with app.test_request_context(environ_base={"REMOTE_ADDR": OFFICE}):
                barrier.wait()
                try:
                    login.authenticate("officer_a", "wrong-password-1", OFFICE)
                except refusals.Refusal as refusal:
                    outcomes.append(refusal.retry_at is not None)
                finally:
                    db.session.rollback()
                    db.session.remove()

        threads = [threading.Thread(target=guess) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(outcomes) == workers, f"run {run}: {outcomes}"
        # The fifth failure is free, the sixth starts the wait; nobody else gets a check.
        assert len(hash_calls) <= 2, f"run {run}: {len(hash_calls)} checks"


def test_the_intake_api_429_says_when_too(app, make, rate_limits):
    """Every 429, not only the login page's: the centre's client gets Retry-After and a wait."""
    rate_limits["INTAKE_RATE_LIMIT"] = "2/minute"
    station = make.station("A")
    make.user(station, "officer", "officer_a")
    _row, token = make.token(station)
    db.session.commit()
    client = app.test_client()
    codes = []
    for _ in range(3):
        resp = client.post(
            "/api/v1/warnings",
            json=factories.intake_body(station_code="A", location=None),
            headers={"Authorization": f"Bearer {token}"},
        )
        codes.append(resp.status_code)
    assert codes == [201, 201, 429]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert re.search(r"请 \d+ 秒后再试", resp.get_json()["error"])
