"""The officer's device endpoints: duty, position, subscriptions, receipts, test alert, stream."""

import pytest
import sqlalchemy as sa

from fieldapp import dispatch, push, worker
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage, PushSubscription, User
from tests.pushservice import subscribe

LAT, LON = 27.8170, 114.9230


@pytest.fixture
def people(make, fake_clock):
    station = make.station("D", lat=LAT, lon=LON)
    other = make.station("E", lat=LAT, lon=LON)
    users = {
        "officer": make.user(station, "officer", "off_d", phone="13900000009"),
        "aux": make.user(station, "auxiliary", "aux_d"),
        "chief": make.user(station, "chief", "chief_d"),
        "other": make.user(other, "officer", "off_e"),
    }
    db.session.commit()
    return users


def user(username):
    return db.session.scalar(sa.select(User).where(User.username == username))


@pytest.mark.parametrize("username", ["off_d", "aux_d"])
def test_duty_on_and_off(people, auth, username, fake_clock):
    auth.login(username)
    resp = auth.post_json("/api/v1/me/duty", {"status": "on_duty"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "on_duty"
    assert user(username).duty_status == "on_duty"
    assert auth.post_json("/api/v1/me/duty", {"status": "off_duty"}).status_code == 200
    assert user(username).duty_status == "off_duty"
    events = db.session.scalars(sa.select(Event).where(Event.kind == "duty_changed")).all()
    assert [e.data["status"] for e in events] == ["on_duty", "off_duty"]


def test_duty_is_for_field_roles_only(people, auth):
    auth.login("chief_d")
    assert auth.post_json("/api/v1/me/duty", {"status": "on_duty"}).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [({"status": "sleeping"}, "status"), ({}, "status"), ({"status": 1}, "status")],
)
def test_duty_bad_input_is_422(people, auth, body, field):
    auth.login("off_d")
    resp = auth.post_json("/api/v1/me/duty", body)
    assert resp.status_code == 422 and field in resp.get_json()["errors"]


def test_device_endpoints_need_csrf_and_login(people, client, auth):
    assert client.post("/api/v1/me/duty", json={"status": "on_duty"}).status_code in (400, 401)
    auth.login("off_d")
    assert client.post("/api/v1/me/duty", json={"status": "on_duty"}).status_code == 400
    assert user("off_d").duty_status == "off_duty"


def test_not_json_is_422_not_500(people, auth, client):
    auth.login("off_d")
    resp = client.post(
        "/api/v1/me/position",
        data="lat=1",
        headers={"X-CSRFToken": auth.csrf("/"), "Content-Type": "text/plain"},
    )
    assert resp.status_code == 422


def test_position_is_stored_and_makes_the_officer_dispatchable(people, auth, make, fake_clock):
    auth.login("off_d")
    auth.post_json("/api/v1/me/duty", {"status": "on_duty"})
    resp = auth.post_json("/api/v1/me/position", {"lat": LAT, "lon": LON, "accuracy_m": 12})
    assert resp.status_code == 200
    assert resp.get_json()["stale_after_s"] == 900
    me = user("off_d")
    assert (me.lat, me.lon, me.accuracy_m, me.position_at) == (LAT, LON, 12, fake_clock.now())
    w = make.warning(me.station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w, fake_clock.now()).officer_id == me.id
    fake_clock.advance(901)
    w2 = make.warning(me.station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w2, fake_clock.now()) is None  # position went stale


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 91, "lon": 0}, "lat"),
        ({"lat": 0, "lon": "east"}, "lon"),
        ({"lat": 0, "lon": 0, "accuracy_m": -1}, "accuracy_m"),
        ({"lon": 0}, "lat"),
    ],
)
def test_position_bad_input_is_422(people, auth, body, field):
    auth.login("off_d")
    resp = auth.post_json("/api/v1/me/position", body)
    assert resp.status_code == 422 and field in resp.get_json()["errors"]
    assert user("off_d").position_at is None


def test_an_endpoint_belongs_to_one_account(people, auth, client, push_service):
    """Issue 14 #10: whoever knows an officer's endpoint cannot take their alerts."""
    device = push_service.device()
    auth.login("off_d")
    resp = auth.post_json("/api/v1/push/subscriptions", device.subscription_json())
    assert resp.status_code == 201
    # The owner registering again (every page load does) is fine.
    again = auth.post_json("/api/v1/push/subscriptions", device.subscription_json())
    assert again.status_code == 201 and again.get_json()["id"] == resp.get_json()["id"]
    auth.logout()
    auth.login("chief_d")
    taken = auth.post_json("/api/v1/push/subscriptions", device.subscription_json())
    assert taken.status_code == 422
    assert "另一个账号" in taken.get_json()["errors"]["endpoint"]
    db.session.expire_all()
    assert db.session.scalars(sa.select(PushSubscription)).one().user_id == user("off_d").id
    body = {"endpoint": device.endpoint}
    assert auth.post_json("/api/v1/push/subscriptions", body, method="DELETE").status_code == 404
    auth.logout()
    auth.login("off_d")
    assert auth.post_json("/api/v1/push/subscriptions", body, method="DELETE").status_code == 204
    assert db.session.scalars(sa.select(PushSubscription)).all() == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s["keys"].update(p256dh="AAAA"),
        lambda s: s["keys"].update(auth="not base64 !!"),
        lambda s: s.update(endpoint="http://push.example.com/x"),
        lambda s: s.update(endpoint="javascript:alert(1)"),
        lambda s: s.pop("keys"),
    ],
)
def test_bad_subscriptions_are_422(people, auth, push_service, mutate):
    sub = push_service.device().subscription_json()
    mutate(sub)
    auth.login("off_d")
    resp = auth.post_json("/api/v1/push/subscriptions", sub)
    assert resp.status_code == 422, resp.get_json()
    assert db.session.scalars(sa.select(PushSubscription)).all() == []


def test_plain_http_endpoints_refused_unless_allowed(people, auth, push_service, app):
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = False
    auth.login("off_d")
    resp = auth.post_json("/api/v1/push/subscriptions", push_service.device().subscription_json())
    assert resp.status_code == 422 and "endpoint" in resp.get_json()["errors"]


def test_vapid_public_key(client, app):
    resp = client.get("/api/v1/push/vapid-public-key")
    key = resp.get_json()["key"]
    assert resp.status_code == 200 and key == push.public_key() and "=" not in key
    assert len(key) == 87  # 65 bytes, URL-safe base64 without padding


def _offer_with_push(make, fake_clock, officer, push_service):
    device = push_service.device()
    subscribe(officer, device)
    officer.duty_status = "on_duty"
    officer.lat, officer.lon, officer.position_at = LAT, LON, fake_clock.now()
    w = make.warning(officer.station, lat=LAT, lon=LON)
    offer = dispatch.dispatch(w, fake_clock.now())
    db.session.commit()
    worker.run_once()
    return device, offer


def test_receipt_with_the_payload_token_needs_no_session(
    people, client, make, fake_clock, push_service
):
    device, offer = _offer_with_push(make, fake_clock, people["officer"], push_service)
    payload = device.payloads()[0]
    body = {"message_id": payload["message_id"], "token": payload["receipt_token"]}
    assert client.post("/api/v1/push/receipts", json=body).status_code == 200
    assert client.post("/api/v1/push/receipts", json=body).status_code == 200  # idempotent
    db.session.refresh(offer)
    assert offer.delivered_at == fake_clock.now()
    delivered = db.session.scalars(sa.select(Event).where(Event.kind == "delivered")).all()
    assert len(delivered) == 1 and delivered[0].data["offer_id"] == offer.id


def test_forged_or_foreign_receipts_are_refused(
    people, client, auth, make, fake_clock, push_service
):
    device, offer = _offer_with_push(make, fake_clock, people["officer"], push_service)
    payload = device.payloads()[0]
    forged = {"message_id": payload["message_id"], "token": payload["receipt_token"][:-3] + "abc"}
    assert client.post("/api/v1/push/receipts", json=forged).status_code == 401
    other_message = {"message_id": "m999999", "token": push.receipt_token("m999999", 1)}
    assert client.post("/api/v1/push/receipts", json=other_message).status_code == 404
    # Someone else's session cannot acknowledge this officer's message.
    auth.login("off_e")
    resp = auth.post_json("/api/v1/push/receipts", {"message_id": payload["message_id"]})
    assert resp.status_code == 404
    db.session.refresh(offer)
    assert offer.delivered_at is None
    # Without a token the session needs its CSRF header.
    auth.logout()
    auth.login("off_d")
    assert client.post("/api/v1/push/receipts", json={"message_id": "m1"}).status_code == 401
    resp = auth.post_json("/api/v1/push/receipts", {"message_id": payload["message_id"]})
    assert resp.status_code == 200
    db.session.refresh(offer)
    assert offer.delivered_at is not None


def test_test_alert_pushes_and_falls_back_to_sms_without_receipt(
    people, auth, fake_clock, push_service
):
    officer = people["officer"]
    device = push_service.device()
    subscribe(officer, device)
    auth.login("off_d")
    resp = auth.post_json("/api/v1/me/test-alert", {})
    assert resp.status_code == 202
    message_id = resp.get_json()["message_id"]
    worker.run_once()
    [payload] = device.payloads()
    assert payload["message_id"] == message_id and payload["kind"] == "reminder"
    assert payload["title"] == "测试提醒" and payload["warning_id"] is None
    fake_clock.advance(20)
    worker.run_once()
    check = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt_check")
    ).one()
    assert check.status == "done" and check.payload["sent"] is True


def test_test_alert_receipt_stops_the_sms(people, auth, client, fake_clock, push_service):
    device = push_service.device()
    subscribe(people["officer"], device)
    auth.login("off_d")
    auth.post_json("/api/v1/me/test-alert", {})
    worker.run_once()
    payload = device.payloads()[0]
    body = {"message_id": payload["message_id"], "token": payload["receipt_token"]}
    assert client.post("/api/v1/push/receipts", json=body).status_code == 200
    fake_clock.advance(20)
    worker.run_once()
    check = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt_check")
    ).one()
    assert check.payload["skipped"] == "delivered"


def test_stream_sends_my_offers_and_catches_up_by_last_event_id(
    people, auth, client, make, fake_clock, app
):
    app.config.update(STREAM_SECONDS=0.2)
    me, colleague = people["officer"], people["aux"]
    for u in (me, colleague):
        u.duty_status = "on_duty"
        u.lat, u.lon, u.position_at = LAT, LON, fake_clock.now()
    people["aux"].station.auxiliaries_take_offers = True
    w_mine = make.warning(
        me.station, lat=LAT, lon=LON, person_name="钱七", person_phone="13611112222"
    )
    offer = dispatch.make_offer(w_mine, me, fake_clock.now(), distance_m=800)
    w_theirs = make.warning(me.station, lat=LAT, lon=LON)
    dispatch.make_offer(w_theirs, colleague, fake_clock.now())
    db.session.commit()
    auth.login("off_d")
    resp = client.get("/api/v1/me/stream", buffered=True, headers={"Last-Event-ID": "0"})
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    text = resp.get_data(as_text=True)
    assert "event: offer" in text
    assert f'"offer_id": {offer.id}' in text and f'"warning_id": {w_theirs.id}' not in text
    assert "新预警" in text and "距离 800 米" in text
    assert "钱七" not in text and "13611112222" not in text
    last_id = max(int(line[4:]) for line in text.splitlines() if line.startswith("id: "))
    # Reconnecting from the last id gives nothing old again.
    again = client.get("/api/v1/me/stream", buffered=True, headers={"Last-Event-ID": str(last_id)})
    assert "event: offer" not in again.get_data(as_text=True)
    # An offer that was answered meanwhile is not announced on catch-up.
    db.session.get(Offer, offer.id).status = "cancelled"
    db.session.commit()
    later = client.get("/api/v1/me/stream", buffered=True, headers={"Last-Event-ID": "0"})
    assert "event: offer" not in later.get_data(as_text=True)


def test_stream_needs_login(client):
    assert client.get("/api/v1/me/stream").status_code == 401


def test_openapi_lists_the_device_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, method in [
        ("/api/v1/me/duty", "post"),
        ("/api/v1/me/position", "post"),
        ("/api/v1/push/subscriptions", "post"),
        ("/api/v1/push/subscriptions", "delete"),
        ("/api/v1/push/vapid-public-key", "get"),
        ("/api/v1/push/receipts", "post"),
        ("/api/v1/me/test-alert", "post"),
        ("/api/v1/me/stream", "get"),
    ]:
        assert method in doc["paths"][path], (path, method)
    assert "SubscriptionIn" in doc["components"]["schemas"]


def test_field_page_has_the_duty_switch_translated(people, auth, client):
    auth.login("off_d")
    html = client.get("/field/").get_data(as_text=True)
    assert 'id="duty-toggle"' in html and 'role="switch"' in html
    assert "值班中" in html and "发送测试提醒" in html
    assert 'src="/static/js/duty.js' in html
    assert 'data-stream-url="/api/v1/me/stream?last_event_id=' in html
    assert "<script>" not in html and "onclick" not in html and 'style="' not in html
