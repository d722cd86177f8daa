"""Express send: the intake request pushes its new offer itself, right after its response."""

import threading
import time
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from fieldapp import worker
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage, User, Warning
from tests.pushservice import push_service_fixture, subscribe  # noqa: F401

LAT, LON = 27.8170, 114.9230


@pytest.fixture
def express_on(app):
    app.config["EXPRESS_PUSH"] = True
    yield
    app.config["EXPRESS_PUSH"] = False


@pytest.fixture
def centre(make, push_service, fake_clock):
    station = make.station(lat=LAT, lon=LON, receipt_timeout_s=20, ack_timeout_s=90)
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON)
    device = push_service.device()
    subscribe(officer, device)
    _row, token = make.token(station)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}, officer, device


def post(client, make, headers):
    body = make.intake_body(location={"lat": LAT, "lon": LON}, station_code=None)
    return client.post("/api/v1/warnings", json=body, headers=headers)


def push_row() -> OutboxMessage:
    db.session.expire_all()
    [row] = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "push"))
    return row


def test_new_warning_is_pushed_when_the_response_closes_and_never_again(
    client, make, centre, express_on, fake_clock
):
    headers, officer, device = centre
    resp = post(client, make, headers)
    assert resp.status_code == 201
    # Committed and leased to the request: no worker may take it meanwhile.
    row = push_row()
    assert row.locked_by.startswith("express:") and row.attempts == 1 and device.received == []
    assert worker.run_once("w")["done"] == 0
    resp.close()  # what the WSGI server does once the response has gone out
    [message] = device.payloads()
    assert message["kind"] == "offer" and message["message_id"] == f"m{row.id}"
    assert device.received[0]["headers"]["urgency"] == "high"
    row = push_row()
    assert row.status == "done" and row.payload["sent"] and row.payload["inflight"] == []
    offer = db.session.scalar(sa.select(Offer))
    assert offer.sent_at == fake_clock.now()
    assert db.session.scalar(sa.select(Event).where(Event.kind == "push_sent")) is not None
    # The worker has nothing left to send for it.
    fake_clock.advance(worker.LEASE_S + 1)
    worker.run_once("w")
    assert len(device.received) == 1


def test_express_failure_leaves_the_row_to_the_worker_with_backoff(
    client, make, centre, express_on, fake_clock
):
    headers, _officer, device = centre
    device.answer(503, retry_after="7")
    resp = post(client, make, headers)
    resp.close()
    assert device.received == []
    row = push_row()
    # Due again for the worker, no sooner than the push service's Retry-After.
    assert row.status == "pending" and row.locked_until is None and row.attempts == 1
    assert row.due_at >= fake_clock.now() + timedelta(seconds=7)
    fake_clock.advance(3600)
    assert worker.run_once("w")["done"] >= 1
    assert len(device.received) == 1
    assert push_row().attempts == 2


def test_request_that_dies_before_sending_delays_the_push_by_the_lease_only(
    client, make, centre, express_on, fake_clock
):
    headers, _officer, device = centre
    assert post(client, make, headers).status_code == 201  # never closed: the process died
    assert worker.run_once("w")["done"] == 0 and device.received == []
    fake_clock.advance(worker.LEASE_S + 1)
    worker.run_once("w")
    assert len(device.received) == 1
    assert push_row().status == "done" and push_row().attempts == 2


def test_repeat_and_unassigned_warnings_send_nothing_express(
    client, make, centre, express_on, push_service
):
    headers, officer, device = centre
    body = make.intake_body(location={"lat": LAT, "lon": LON})
    client.post("/api/v1/warnings", json=body, headers=headers).close()
    again = client.post("/api/v1/warnings", json=body, headers=headers)
    assert again.status_code == 200
    again.close()
    assert len(device.received) == 1
    officer.duty_status = "off_duty"
    db.session.commit()
    nobody = post(client, make, headers)
    nobody.close()
    assert len(device.received) == 1
    warning = db.session.get(Warning, nobody.get_json()["id"])
    assert warning.status == "unassigned"


def test_officer_without_devices_leaves_the_row_to_the_worker(
    client, make, centre, express_on, push_service
):
    headers, officer, device = centre
    db.session.execute(sa.text("DELETE FROM push_subscriptions"))
    db.session.commit()
    post(client, make, headers).close()
    row = push_row()
    assert row.locked_by is None and row.status == "pending"
    assert worker.run_once("w")["done"] >= 1
    assert push_row().status == "done"


def test_express_off_leaves_everything_to_the_worker(client, make, centre):
    headers, _officer, device = centre
    post(client, make, headers).close()
    assert device.received == [] and push_row().locked_by is None
    worker.run_once("w")
    assert len(device.received) == 1


def test_chief_hand_entry_is_pushed_express_too(client, make, auth, express_on, push_service):
    station = make.station("CG", lat=LAT, lon=LON)
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON)
    make.user(station, "chief", "chief_cg")
    device = push_service.device()
    subscribe(officer, device)
    db.session.commit()
    auth.login("chief_cg")
    form = {
        "person_name": "周七",
        "person_phone": "13912345678",
        "fraud_type": "impersonating_boss",
        "risk_level": "high",
        "station_code": "CG",
        "csrf_token": auth.csrf("/intake/new"),
    }
    resp = client.post("/intake/new", data=form)
    assert resp.status_code == 302 and device.received == []
    resp.close()
    assert [p["kind"] for p in device.payloads()] == ["offer"]
    assert push_row().status == "done"


def test_a_real_wsgi_server_sends_once_the_response_is_out(app, make, centre, express_on):
    """Through werkzeug's threaded server, as `flask serve` runs it: close() comes after."""
    headers, _officer, device = centre
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        resp = requests.post(
            f"http://127.0.0.1:{server.port}/api/v1/warnings",
            json=make.intake_body(location={"lat": LAT, "lon": LON}),
            headers={**headers, "Host": "localhost"},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        deadline = time.monotonic() + 10
        while not device.received and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert [p["kind"] for p in device.payloads()] == ["offer"]
    assert push_row().status == "done"


def test_a_decline_sends_the_next_officers_offer_after_its_response(
    client, make, auth, express_on, push_service, fake_clock
):
    station = make.station("DS", lat=LAT, lon=LON, ack_timeout_s=90)
    first = make.user(station, "officer", "first_mj", on_duty=True, lat=LAT, lon=LON)
    second = make.user(station, on_duty=True, lat=LAT + 0.01, lon=LON)
    phone = push_service.device()
    subscribe(second, phone)
    w = make.warning(station, lat=LAT, lon=LON)
    from fieldapp import dispatch

    dispatch.make_offer(w, first, fake_clock.now())
    db.session.commit()
    auth.login("first_mj")
    entry = {"client_id": "8a0c3c1e-3d7a-4a57-9f59-0d7a7c3b2a11", "kind": "decline"}
    resp = auth.post_json("/api/v1/sync", {"entries": [{**entry, "warning_id": w.id}]})
    assert resp.status_code == 200 and phone.received == []
    resp.close()
    [message] = phone.payloads()
    assert message["kind"] == "offer" and message["warning_id"] == w.id
    # Claimed like a worker would: the worker finds nothing left to send.
    worker.run_once("w")
    assert len(phone.received) == 1


def test_the_test_alert_arrives_as_soon_as_the_response_is_out(
    client, make, auth, express_on, push_service
):
    station = make.station("TA", lat=LAT, lon=LON)
    make.user(station, "officer", "alert_mj")
    officer = db.session.scalar(sa.select(User).where(User.username == "alert_mj"))
    device = push_service.device()
    subscribe(officer, device)
    db.session.commit()
    auth.login("alert_mj")
    resp = auth.post_json("/api/v1/me/test-alert", {})
    assert resp.status_code == 202
    resp.close()
    [payload] = device.payloads()
    assert payload["message_id"] == resp.get_json()["message_id"]
    assert push_row().status == "done"


def test_a_rolled_back_request_sends_nothing(app, client, make, express_on, push_service):
    """Pushes queued in a transaction that did not commit are not sent."""
    from fieldapp import outbox

    station = make.station("RB", lat=LAT, lon=LON)
    officer = make.user(station)
    device = push_service.device()
    subscribe(officer, device)
    db.session.commit()
    with app.test_request_context("/"):
        outbox.enqueue("push", {"user_id": officer.id, "push_kind": "reminder", "test": True})
        db.session.flush()
        db.session.rollback()
        response = app.process_response(app.response_class("ok"))
        response.close()
    assert device.received == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
