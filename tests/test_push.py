"""Sending one push through real pywebpush to the tests' own push service."""

import socket

import pytest

from fieldapp import push
from fieldapp.outbox import RetryLater
from tests.pushservice import push_service_fixture, subscribe  # noqa: F401

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
    first = [push.backoff_s(1) for _ in range(50)]
    fourth = [push.backoff_s(4) for _ in range(50)]
    assert min(first) >= 3.75 and max(first) <= 6.25 and len(set(first)) > 1
    assert min(fourth) >= 30 and max(fourth) <= 50
    assert push.backoff_s(1, retry_after_s=120) >= 120
    assert push.backoff_s(30) <= push.BACKOFF_CAP_S * 1.25
    assert push.parse_retry_after("17") == 17.0 and push.parse_retry_after("soon") is None


def test_receipt_tokens_cannot_be_forged(app):
    token = push.receipt_token("m5", 3)
    assert push.read_receipt_token(token) == ("m5", 3)
    assert push.read_receipt_token(token[:-2] + "xx") is None
    assert push.read_receipt_token("garbage") is None
