"""Express send: the intake request pushes its new offer itself, right after its response."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import ThreadedWSGIServer, make_server

from fieldapp import express, outbox, worker
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage, User, Warning
from tests.factories import PASSWORD
from tests.listeners import Recorder
from tests.pushservice import PushService, subscribe

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


def close(resp) -> None:
    """What the WSGI server does once the response has gone out; then wait for the pool."""
    resp.close()
    assert express.wait_idle(10)


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
    close(resp)  # what the WSGI server does once the response has gone out
    [message] = device.payloads()
    assert message["kind"] == "offer" and message["message_id"] == f"m{row.id}"
    assert device.received[0]["headers"]["urgency"] == "high"
    row = push_row()
    assert row.status == "done" and row.payload["sent"] and row.payload["inflight"] == []
    offer = db.session.scalar(sa.select(Offer))
    assert offer.sent_at == fake_clock.now()
    assert db.session.scalar(sa.select(Event).where(Event.kind == "push_sent")) is not None
    # The worker has nothing left to send for it.
    fake_clock.advance(outbox.LEASE_S + 1)
    worker.run_once("w")
    assert len(device.received) == 1


def test_express_failure_leaves_the_row_to_the_worker_with_backoff(
    client, make, centre, express_on, fake_clock
):
    headers, _officer, device = centre
    device.answer(503, retry_after="7")
    resp = post(client, make, headers)
    close(resp)
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
    fake_clock.advance(outbox.LEASE_S + 1)
    worker.run_once("w")
    assert len(device.received) == 1
    assert push_row().status == "done" and push_row().attempts == 2


def test_repeat_and_unassigned_warnings_send_nothing_express(
    client, make, centre, express_on, push_service
):
    headers, officer, device = centre
    body = make.intake_body(location={"lat": LAT, "lon": LON})
    close(client.post("/api/v1/warnings", json=body, headers=headers))
    again = client.post("/api/v1/warnings", json=body, headers=headers)
    assert again.status_code == 200
    close(again)
    assert len(device.received) == 1
    officer.duty_status = "off_duty"
    db.session.commit()
    nobody = post(client, make, headers)
    close(nobody)
    assert len(device.received) == 1
    warning = db.session.get(Warning, nobody.get_json()["id"])
    assert warning.status == "unassigned"


def test_officer_without_devices_gets_the_sms_right_after_the_response(
    app, client, make, centre, express_on, push_service, fake_clock
):
    """No device to push to: no receipt can come, so the SMS goes now, not after 20 s."""
    headers, officer, device = centre
    officer.phone = "13900000077"
    db.session.execute(sa.text("DELETE FROM push_subscriptions"))
    db.session.commit()
    gateway = Recorder()
    app.config.update(SMS_BACKEND="http", SMS_HTTP_URL=f"{gateway.url}/sms")
    try:
        resp = post(client, make, headers)
        assert resp.status_code == 201 and gateway.requests == []
        close(resp)
    finally:
        gateway.close()
    [sms] = gateway.json_bodies()
    assert sms["to"] == "13900000077" and sms["text"].startswith("新预警：")
    offer = db.session.scalar(sa.select(Offer))
    assert offer.fallback_at == fake_clock.now()
    assert push_row().status == "done"
    # The worker finds nothing left: the SMS is not sent again at the receipt timeout.
    fake_clock.advance(60)
    worker.run_once("w")
    assert len(gateway.requests) == 1


def test_express_off_leaves_everything_to_the_worker(client, make, centre):
    headers, _officer, device = centre
    close(post(client, make, headers))
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
    close(resp)
    assert [p["kind"] for p in device.payloads()] == ["offer"]
    assert push_row().status == "done"


def test_a_real_wsgi_server_sends_once_the_response_is_out(app, make, centre, express_on):
    """Through werkzeug's threaded server, as `flask serve` runs it: close() comes after."""
    headers, _officer, device = centre
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
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
        assert express.wait_idle(10)
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
    close(resp)
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
    close(resp)
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
        close(response)
    assert device.received == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


class GthreadLikeServer(ThreadedWSGIServer):
    """werkzeug's server with a fixed number of request threads, as gunicorn's gthread has:
    whatever holds a request thread after its response takes it from everyone else."""

    request_threads = 4

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool = ThreadPoolExecutor(self.request_threads)

    def process_request(self, request, client_address):
        self.pool.submit(self.process_request_thread, request, client_address)


def test_a_hanging_push_service_holds_no_request_thread(app, make, express_on, fake_clock):
    """Issue 14 #1: an officer with a silent push endpoint asks for many test alerts; the
    server still answers /healthz and the centre's warnings, whose offers still go out."""
    silent, healthy = PushService(), PushService()
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = True
    station = make.station("HG", lat=LAT, lon=LON)
    make.user(station, "officer", "silent_mj")
    silent_officer = db.session.scalar(sa.select(User).where(User.username == "silent_mj"))
    trap = silent.device()
    trap.hang(times=100)
    subscribe(silent_officer, trap)
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON)
    phone = healthy.device()
    subscribe(officer, phone)
    _row, token = make.token(station)
    db.session.commit()
    server = GthreadLikeServer("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        browser = requests.Session()
        browser.headers["Host"] = "localhost"
        page = browser.get(f"{base}/login", timeout=5).text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        form = {"username": "silent_mj", "password": PASSWORD, "csrf_token": csrf}
        assert browser.post(f"{base}/login", data=form, timeout=5).status_code in (200, 302)
        csrf = re.search(
            r'name="csrf-token" content="([^"]+)"', browser.get(f"{base}/field/", timeout=5).text
        ).group(1)
        for _ in range(3 * GthreadLikeServer.request_threads):
            alert = browser.post(
                f"{base}/api/v1/me/test-alert", json={}, headers={"X-CSRFToken": csrf}, timeout=5
            )
            assert alert.status_code == 202
        assert silent.held.wait(5)  # the silent service holds sends now
        for _ in range(10):
            assert requests.get(f"{base}/healthz", timeout=3).status_code == 200
        intake = requests.post(
            f"{base}/api/v1/warnings",
            json=make.intake_body(location={"lat": LAT, "lon": LON}),
            headers={"Authorization": f"Bearer {token}", "Host": "localhost"},
            timeout=3,
        )
        assert intake.status_code == 201, intake.text
        deadline = time.monotonic() + 10
        while not phone.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [p["kind"] for p in phone.payloads()] == ["offer"]
    finally:
        silent.close()
        healthy.close()
        server.shutdown()
        express.wait_idle(30)
