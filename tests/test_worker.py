"""The outbox worker end to end: intake → offer → push accepted, retries, fallback, crashes."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from fieldapp import dispatch, outbox, push, push_delivery, worker
from fieldapp.extensions import db
from fieldapp.models import (
    Event,
    Offer,
    OutboxMessage,
    PushSubscription,
    User,
    Warning,
    WorkerHeartbeat,
)
from tests.pushservice import subscribe

LAT, LON = 27.8170, 114.9230
NAME, PHONE = "赵六", "13712345678"


@pytest.fixture
def county(make, fake_clock):
    station = make.station(lat=LAT, lon=LON)
    a = make.user(station, on_duty=True, lat=LAT, lon=LON, phone="13900000001")
    b = make.user(station, on_duty=True, lat=LAT + 0.02, lon=LON, phone="13900000002")
    chief = make.user(station, "chief")
    db.session.commit()
    return station, a, b, chief


def new_offer(make, station, fake_clock):
    w = make.warning(station, lat=LAT, lon=LON, person_name=NAME, person_phone=PHONE)
    offer = dispatch.dispatch(w, fake_clock.now())
    db.session.commit()
    return w, offer


def rows(kind=None):
    q = sa.select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        q = q.where(OutboxMessage.kind == kind)
    return db.session.scalars(q).all()


def event_kinds(w):
    return [e.kind for e in db.session.scalars(sa.select(Event).where(Event.warning_id == w.id))]


def assert_no_personal_data(service):
    for payload in service.all_payloads():
        text = json.dumps(payload, ensure_ascii=False)
        assert NAME not in text and PHONE not in text


def test_offer_push_reaches_every_device_once_and_records_sent_at(
    county, make, fake_clock, push_service
):
    station, a, _b, _chief = county
    phone, tablet = push_service.device(), push_service.device()
    subscribe(a, phone)
    subscribe(a, tablet)
    w, offer = new_offer(make, station, fake_clock)
    counts = worker.run_once("w1")
    assert counts["done"] == 1  # only the push is due; receipt check and timeout wait
    assert len(phone.received) == 1 and len(tablet.received) == 1
    payload = phone.payloads()[0]
    [row] = rows("push")
    assert payload["message_id"] == f"m{row.id}" and payload["kind"] == "offer"
    assert row.status == "done" and row.payload["sent"] and row.payload["inflight"] == []
    db.session.refresh(offer)
    assert offer.sent_at == fake_clock.now()
    assert "push_sent" in event_kinds(w)
    assert worker.run_once("w1")["done"] == 0 and len(phone.received) == 1
    assert db.session.get(WorkerHeartbeat, "w1").seen_at == fake_clock.now()
    assert_no_personal_data(push_service)


@pytest.mark.parametrize("code", [404, 410])
def test_expired_subscription_is_removed_and_the_others_still_served(
    county, make, fake_clock, push_service, code
):
    station, a, _b, _chief = county
    old, new = push_service.device(), push_service.device()
    old.answer(code)
    old_sub = subscribe(a, old)
    subscribe(a, new)
    _w, offer = new_offer(make, station, fake_clock)
    old_id = old_sub.id
    worker.run_once()
    assert db.session.get(PushSubscription, old_id) is None
    assert len(new.received) == 1
    assert rows("push")[0].status == "done"
    db.session.refresh(offer)
    assert offer.sent_at is not None


def test_429_is_retried_after_retry_after_and_only_to_the_failed_device(
    county, make, fake_clock, push_service
):
    station, a, _b, _chief = county
    ok, busy = push_service.device(), push_service.device()
    subscribe(a, ok)
    subscribe(a, busy)
    busy.answer(429, "40")
    _w, offer = new_offer(make, station, fake_clock)
    assert worker.run_once()["retry"] == 1
    [row] = rows("push")
    assert row.status == "pending" and row.attempts == 1 and "429" in row.last_error
    wait = (row.due_at - fake_clock.now()).total_seconds()
    assert 40 <= wait < station.ack_timeout_s
    db.session.refresh(offer)
    assert offer.sent_at is None  # not all devices yet: recorded when the row is done
    fake_clock.advance(30)
    assert worker.run_once()["retry"] == 0 and len(busy.received) == 0
    fake_clock.advance(wait - 30)
    worker.run_once()
    assert len(ok.received) == 1 and len(busy.received) == 1
    db.session.refresh(row)
    assert row.status == "done" and row.attempts == 2


def test_500_retries_with_growing_backoff_then_dies(county, make, fake_clock, push_service):
    station, a, _b, _chief = county
    device = push_service.device()
    subscribe(a, device)
    device.answer(500, times=outbox.MAX_ATTEMPTS)
    w = make.warning(station)
    outbox.enqueue("push", {"user_id": a.id, "push_kind": "reminder", "warning_id": w.id})
    db.session.commit()
    waits = []
    for _ in range(outbox.MAX_ATTEMPTS):
        worker.run_once()
        [row] = rows("push")
        if row.status == "dead":
            break
        waits.append((row.due_at - fake_clock.now()).total_seconds())
        fake_clock.current = row.due_at
    assert row.status == "dead" and row.attempts == outbox.MAX_ATTEMPTS
    assert waits[0] < waits[2] < waits[4]
    assert device.received == []


def test_network_error_is_retried(county, make, fake_clock, push_service):
    station, a, _b, _chief = county
    device = push_service.device()
    sub = subscribe(a, device)
    good_endpoint = sub.endpoint
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    sub.endpoint = f"http://127.0.0.1:{closed_port}/push/nobody"
    new_offer(make, station, fake_clock)
    assert worker.run_once()["retry"] == 1
    assert "network error" in rows("push")[0].last_error
    db.session.get(PushSubscription, sub.id).endpoint = good_endpoint
    db.session.commit()
    fake_clock.advance(3600)
    worker.run_once()
    assert len(device.received) == 1 and rows("push")[0].status == "done"


def test_push_for_an_answered_offer_is_not_sent(county, make, fake_clock, push_service):
    station, a, _b, _chief = county
    device = push_service.device()
    subscribe(a, device)
    w, _offer = new_offer(make, station, fake_clock)
    dispatch.accept(w, a, fake_clock.now())
    db.session.commit()
    worker.run_once()
    assert device.received == []
    assert rows("push")[0].payload["skipped"] == "offer_accepted"


def test_no_receipt_triggers_the_sms_fallback(county, make, fake_clock, push_service, caplog):
    station, a, _b, _chief = county
    subscribe(a, push_service.device())
    w, offer = new_offer(make, station, fake_clock)
    worker.run_once()
    fake_clock.advance(station.receipt_timeout_s)
    # Alembic's fileConfig (run by the migrations fixture) disables loggers made before it.
    logging.getLogger("fieldapp.sms").disabled = False
    with caplog.at_level("INFO", logger="fieldapp.sms"):
        worker.run_once()
    db.session.refresh(offer)
    assert offer.fallback_at == fake_clock.now()
    assert "fallback_sms" in event_kinds(w)
    log_text = caplog.text
    assert "sms (log backend)" in log_text and a.phone not in log_text and NAME not in log_text
    # The offer still times out to the next officer afterwards.
    fake_clock.advance(station.ack_timeout_s)
    worker.run_once()
    pending = db.session.scalar(sa.select(Offer).where(Offer.status == "pending"))
    assert pending.officer_id != a.id


def test_a_receipt_stops_the_sms_fallback(county, make, fake_clock, push_service, client):
    station, a, _b, _chief = county
    device = push_service.device()
    subscribe(a, device)
    w, offer = new_offer(make, station, fake_clock)
    worker.run_once()
    payload = device.payloads()[0]
    resp = client.post(
        "/api/v1/push/receipts",
        json={"message_id": payload["message_id"], "token": payload["receipt_token"]},
    )
    assert resp.status_code == 200, resp.get_json()
    fake_clock.advance(station.receipt_timeout_s)
    worker.run_once()
    db.session.refresh(offer)
    assert offer.delivered_at is not None and offer.fallback_at is None
    kinds = event_kinds(w)
    assert "delivered" in kinds and "fallback_sms" not in kinds


def test_http_sms_gateway_gets_the_template_filled(county, make, fake_clock, app):
    station, a, _b, _chief = county
    bodies = []

    class Gateway(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        app.config.update(
            SMS_BACKEND="http",
            SMS_HTTP_URL=f"http://127.0.0.1:{server.server_address[1]}/send",
            SMS_HTTP_TEMPLATE='{"mobile": "{phone}", "content": "【反诈】{text}", "sign": 1}',
        )
        _w, offer = new_offer(make, station, fake_clock)
        fake_clock.advance(station.receipt_timeout_s)
        worker.run_once()
    finally:
        server.shutdown()
        server.server_close()
    [body] = bodies
    assert body["mobile"] == a.phone and body["sign"] == 1
    assert body["content"].startswith("【反诈】新预警：")
    assert NAME not in body["content"] and PHONE not in body["content"]
    db.session.refresh(offer)
    assert offer.fallback_at is not None


def test_killed_worker_lease_runs_out_and_row_is_processed_exactly_once(
    county, make, fake_clock, push_service
):
    station, a, _b, _chief = county
    device = push_service.device()
    subscribe(a, device)
    new_offer(make, station, fake_clock)
    # Worker "dead" claims the push and dies before sending anything.
    assert len(outbox.claim("dead", fake_clock.now(), ["push"], 20)) == 1
    assert worker.run_once("alive")["done"] == 0  # leased: not touched
    assert device.received == []
    fake_clock.advance(outbox.LEASE_S + 1)
    worker.run_once("alive")
    worker.run_once("other")
    assert len(device.received) == 1
    [row] = rows("push")
    assert row.status == "done" and row.attempts == 2 and row.locked_by == "alive"


def test_worker_killed_after_the_push_was_accepted_does_not_send_it_again(
    county, make, fake_clock, push_service, monkeypatch
):
    station, a, _b, _chief = county
    device = push_service.device()
    sub_id = subscribe(a, device).id
    _w, offer = new_offer(make, station, fake_clock)
    original = push_delivery.record_results

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed  # the push service has answered 201; the process dies here

    monkeypatch.setattr(push_delivery, "record_results", die)
    with pytest.raises(Killed):
        worker.run_once("victim")
    db.session.rollback()
    monkeypatch.setattr(push_delivery, "record_results", original)
    assert len(device.received) == 1
    [row] = rows("push")
    assert row.status == "pending" and row.payload["inflight"]
    fake_clock.advance(outbox.LEASE_S + push.SEND_DEADLINE_S + 1)
    worker.run_once("rescuer")
    assert len(device.received) == 1  # not sent again
    db.session.refresh(row)
    assert row.status == "done" and row.payload["uncertain"] == [sub_id]
    # The SMS fallback still covers the officer if the push in fact never arrived.
    fake_clock.advance(station.receipt_timeout_s)
    worker.run_once("rescuer")
    db.session.refresh(offer)
    assert offer.fallback_at is not None


def test_two_workers_in_parallel_never_send_one_message_twice(app, make, fake_clock, push_service):
    station = make.station(lat=LAT, lon=LON)
    devices = []
    for i in range(12):
        officer = make.user(station, on_duty=True, lat=LAT + 0.001 * i, lon=LON)
        device = push_service.device()
        subscribe(officer, device)
        devices.append(device)
    for _ in range(12):
        make.warning(station, lat=LAT, lon=LON)
    db.session.commit()
    for w in db.session.scalars(sa.select(Warning)).all():
        dispatch.dispatch(w, fake_clock.now())
        db.session.commit()
    errors = []

    def run(name):
        with app.app_context():
            try:
                for _ in range(3):
                    worker.run_once(name)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = [p["message_id"] for d in devices for p in d.payloads()]
    assert len(ids) == 12 and len(set(ids)) == 12
    db.session.expire_all()
    assert {r.status for r in rows("push")} == {"done"}


def test_reassign_tells_the_old_owner_by_push(county, make, fake_clock, push_service):
    station, a, b, chief = county
    a_device, b_device = push_service.device(), push_service.device()
    subscribe(a, a_device)
    subscribe(b, b_device)
    w, _offer = new_offer(make, station, fake_clock)
    dispatch.accept(w, a, fake_clock.now())
    dispatch.reassign(w, db.session.get(User, b.id), chief, fake_clock.now())
    db.session.commit()
    worker.run_once()
    assert [p["kind"] for p in a_device.payloads()] == ["reassigned"]
    assert a_device.payloads()[0]["title"] == "预警已改派"
    assert [p["kind"] for p in b_device.payloads()] == ["offer"]
    assert_no_personal_data(push_service)


def test_unknown_kinds_wait_for_their_handler(county, fake_clock):
    outbox.enqueue("fax", {"user_id": 1})  # a kind no handler serves
    db.session.commit()
    assert worker.run_once() == {"done": 0, "retry": 0, "lost": 0}
    assert rows("fax")[0].status == "pending"


def test_a_permanent_failure_is_dead_at_once(county, make, fake_clock, app):
    station, _a, _b, _chief = county
    app.config.update(SMS_BACKEND="http", SMS_HTTP_URL="")  # misconfigured gateway
    new_offer(make, station, fake_clock)
    fake_clock.advance(station.receipt_timeout_s)
    worker.run_once()
    [check] = rows("receipt_check")
    assert check.status == "dead" and check.attempts == 1 and "SmsError" in check.last_error


def test_worker_command_once(county, make, fake_clock, push_service, runner):
    station, a, _b, _chief = county
    device = push_service.device()
    subscribe(a, device)
    new_offer(make, station, fake_clock)
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "done=1" in result.output
    assert len(device.received) == 1
