"""Issue 11: the SMS goes at once when a push cannot arrive, after the receipt timeout when it
might have and no receipt came. The SMS gateway is a local HTTP listener."""

import pytest
import sqlalchemy as sa

from fieldapp import dispatch, worker
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage
from tests.listeners import Recorder
from tests.pushservice import subscribe

LAT, LON = 27.8170, 114.9230
NAME, PHONE = "孙八", "13755556666"


@pytest.fixture
def gateway(app):
    recorder = Recorder()
    app.config.update(SMS_BACKEND="http", SMS_HTTP_URL=f"{recorder.url}/send")
    yield recorder
    recorder.close()


@pytest.fixture
def station(make, fake_clock):
    station = make.station(lat=LAT, lon=LON, receipt_timeout_s=20, ack_timeout_s=90)
    db.session.commit()
    return station


def offer_to(make, station, fake_clock, officer):
    w = make.warning(station, lat=LAT, lon=LON, person_name=NAME, person_phone=PHONE)
    offer = dispatch.make_offer(w, officer, fake_clock.now(), distance_m=300)
    db.session.commit()
    return offer


def test_an_officer_without_a_device_gets_the_sms_as_the_offer_is_made(
    make, station, fake_clock, gateway
):
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON, phone="13900000051")
    offer = offer_to(make, station, fake_clock, officer)
    worker.run_once()  # no time has passed
    [sms] = gateway.json_bodies()
    assert sms["to"] == "13900000051" and sms["text"] == "新预警：虚假网购退款 高风险 · 距离 300 米"
    assert NAME not in sms["text"] and PHONE not in sms["text"]
    db.session.refresh(offer)
    assert offer.fallback_at == fake_clock.now()
    kinds = [
        e.kind
        for e in db.session.scalars(sa.select(Event).where(Event.warning_id == offer.warning_id))
    ]
    assert "fallback_sms" in kinds
    fake_clock.advance(station.ack_timeout_s - 1)
    worker.run_once()
    assert len(gateway.requests) == 1  # once per offer


def test_an_officer_with_a_device_but_no_receipt_gets_it_after_the_timeout(
    make, station, fake_clock, gateway, push_service
):
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON, phone="13900000052")
    subscribe(officer, push_service.device())
    offer = offer_to(make, station, fake_clock, officer)
    worker.run_once()
    assert gateway.requests == [] and len(push_service.accepted) == 1
    fake_clock.advance(station.receipt_timeout_s - 1)
    worker.run_once()
    assert gateway.requests == []
    fake_clock.advance(1)
    worker.run_once()
    assert [b["to"] for b in gateway.json_bodies()] == ["13900000052"]
    db.session.refresh(offer)
    assert offer.fallback_at == fake_clock.now()


def test_an_officer_without_a_device_and_without_a_phone_is_on_the_timeline(
    make, station, fake_clock, gateway
):
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON)
    offer = offer_to(make, station, fake_clock, officer)
    worker.run_once()
    assert gateway.requests == []
    check = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt_check"))
    assert check.status == "done" and check.payload["skipped"] == "no_phone"
    event = db.session.scalar(sa.select(Event).where(Event.kind == "fallback_unavailable"))
    assert event.data["offer_id"] == offer.id


def test_a_gateway_that_is_down_is_retried_and_the_sms_still_goes_once(
    make, station, fake_clock, gateway
):
    officer = make.user(station, on_duty=True, lat=LAT, lon=LON, phone="13900000053")
    offer = offer_to(make, station, fake_clock, officer)
    gateway.status = 503
    worker.run_once()
    check = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt_check"))
    assert check.status == "pending" and "503" in check.last_error
    gateway.status = 200
    fake_clock.advance(30)
    worker.run_once()
    assert len(gateway.requests) == 2  # the refused one and the one that went through
    db.session.refresh(offer)
    assert db.session.get(Offer, offer.id).fallback_at is not None
