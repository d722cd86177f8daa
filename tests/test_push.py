"""Sending one push through real pywebpush to the tests' own push service."""

import socket
from datetime import UTC, datetime, timedelta

import pytest

from fieldapp import outbound_http, outbox, push
from fieldapp.outbox import RetryLater
from tests.listeners import Recorder
from tests.pushservice import subscribe

CONTRACT_KEYS = {"v", "kind", "message_id", "warning_id", "title", "body", "url"}


@pytest.fixture
def setup(make, fake_clock):
    station = make.station(lat=27.8, lon=114.9)
    officer = make.user(station, on_duty=True, lat=27.8, lon=114.9, phone="13900000001")
    warning = make.warning(
        station, person_name="王五", person_phone="13812345678", fraud_type="fake_loan"
    )
    from fieldapp import dispatch

    offer = dispatch.dispatch(warning, fake_clock.now())
    return station, officer, warning, offer


def test_offer_payload_is_the_contract_in_chinese_without_personal_data(setup, push_service, app):
    station, officer, warning, offer = setup
    device = push_service.device()
    sub = subscribe(officer, device)
    payload = push.build_payload("m7", "offer", officer, warning, offer)
    result = push.send(sub, payload, ttl=90, urgency="high", topic="m7")
    assert result.status == push.SENT
    [got] = device.payloads()
    assert set(got) >= CONTRACT_KEYS
    assert got["v"] == 1 and got["kind"] == "offer" and got["message_id"] == "m7"
    assert got["warning_id"] == warning.id
    assert got["title"] == "新预警：虚假贷款"
    assert got["body"].startswith("高风险 · 距离 ") and got["body"].endswith(" 公里")
    assert got["actions"]["accept"] == "接受"
    text = str(got)
    assert "王五" not in text and "13812345678" not in text and officer.phone not in text
    headers = device.received[0]["headers"]
    assert headers["urgency"] == "high" and headers["ttl"] == "90" and headers["topic"] == "m7"
    assert push.read_receipt_token(got["receipt_token"]) == ("m7", officer.id)


def test_payload_follows_the_recipients_locale(setup, push_service):
    station, officer, warning, offer = setup
    officer.locale = "en"
    payload = push.build_payload("m8", "offer", officer, warning, offer)
    assert payload["title"] == "New warning: Fake loan"
    assert payload["actions"] == {"open": "Open", "accept": "Accept"}


@pytest.mark.parametrize("code", [404, 410])
def test_expired_subscription_is_reported_gone(setup, push_service, code):
    _station, officer, warning, offer = setup
    device = push_service.device()
    device.answer(code)
    sub = subscribe(officer, device)
    result = push.send(sub, push.build_payload("m1", "offer", officer, warning, offer), ttl=60)
    assert result.status == push.GONE and result.code == code


@pytest.mark.parametrize(
    ("code", "retry_after", "expected"), [(429, "30", 30.0), (503, None, None)]
)
def test_overload_asks_to_retry_later(setup, push_service, code, retry_after, expected):
    _station, officer, warning, offer = setup
    device = push_service.device()
    device.answer(code, retry_after)
    sub = subscribe(officer, device)
    with pytest.raises(RetryLater) as err:
        push.send(sub, push.build_payload("m1", "offer", officer, warning, offer), ttl=60)
    assert err.value.after_s == expected
    assert device.received == []


def test_network_error_asks_to_retry_later(setup, app):
    _station, officer, warning, offer = setup
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = True
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tests.pushservice import PushService

    service = PushService()
    device = service.device()
    service.close()
    device.endpoint = f"http://127.0.0.1:{port}/push/x"
    sub = subscribe(officer, device)
    with pytest.raises(RetryLater, match="network error"):
        push.send(sub, push.build_payload("m1", "offer", officer, warning, offer), ttl=60)


def test_backoff_grows_with_jitter_and_honours_retry_after():
    first = [outbox.backoff_s(1) for _ in range(50)]
    fourth = [outbox.backoff_s(4) for _ in range(50)]
    assert min(first) >= 3.75 and max(first) <= 6.25 and len(set(first)) > 1
    assert min(fourth) >= 30 and max(fourth) <= 50
    assert outbox.backoff_s(1, retry_after_s=120) >= 120
    assert outbox.backoff_s(30) <= outbox.BACKOFF_CAP_S * 1.25
    assert outbox.backoff_s(10**6) <= outbox.BACKOFF_CAP_S * 1.25
    parse = outbound_http.parse_retry_after
    assert parse("17") == 17.0 and parse("soon") is None


@pytest.mark.parametrize(
    "header", ["inf", "Infinity", "nan", "-5", "1e12", "99999999999999", "9" * 400, "１２", "17.5"]
)
def test_no_retry_after_overflows_or_parks_a_row_for_years(header):
    """Retry-After from a hostile server: never inf, NaN or negative, and capped when used."""
    after = outbound_http.parse_retry_after(header)
    assert after is None or (0 <= after <= 10**9)
    delay = outbox.backoff_s(3, after)
    assert 0 < delay <= outbox.RETRY_AFTER_CAP_S
    outbox_due = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=delay)  # no OverflowError
    assert outbox_due.year == 2026


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp()
    parse = outbound_http.parse_retry_after
    assert parse("Wed, 25 Nov 2026 02:01:00 GMT", now) == 60
    assert parse("Tue, 24 Nov 2026 02:00:00 GMT", now) == 0  # in the past: at once
    assert parse("Fri, 31 Dec 9999 23:59:59 GMT", now) <= 10**9
    assert parse("Mon, 01 Jan 0001 00:00:00 GMT", now) in (0, None)


def test_receipt_tokens_cannot_be_forged(app):
    token = push.receipt_token("m5", 3)
    assert push.read_receipt_token(token) == ("m5", 3)
    assert push.read_receipt_token(token[:-2] + "xx") is None
    assert push.read_receipt_token("garbage") is None


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_from_the_push_service_is_never_followed(setup, push_service, code):
    """Issue 14 #2: pywebpush's session followed a 307 with the body to an internal URL."""
    _station, officer, warning, offer = setup
    counter = Recorder()
    try:
        device = push_service.device()
        device.answer(code, location=f"{counter.url}/internal/admin")
        sub = subscribe(officer, device)
        payload = push.build_payload("m1", "offer", officer, warning, offer)
        result = push.send(sub, payload, ttl=60)
    finally:
        counter.close()
    assert result.status == push.REJECTED and result.code == code
    assert counter.requests == []
