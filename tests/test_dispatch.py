"""Choosing the nearest officer, and moving a warning through its offers."""

import os
import threading

import pytest
import sqlalchemy as sa

from fieldapp import dispatch, duty, refusals
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage, Warning

# 0.001 degree of latitude is about 111 m.
LAT, LON = 27.8170, 114.9230


def kinds(warning):
    return [
        e.kind
        for e in db.session.scalars(
            sa.select(Event).where(Event.warning_id == warning.id).order_by(Event.id)
        )
    ]


def pushes(user_id=None):
    rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "push")).all()
    return [r.payload for r in rows if user_id is None or r.payload["user_id"] == user_id]


@pytest.fixture
def station(make, fake_clock):
    return make.station("N", lat=LAT, lon=LON)


def test_nearest_on_duty_officer_gets_the_offer(make, station, fake_clock):
    far = make.user(station, on_duty=True, lat=LAT + 0.02, lon=LON)
    near = make.user(station, on_duty=True, lat=LAT + 0.005, lon=LON)
    make.user(station, on_duty=False, lat=LAT, lon=LON)  # off duty, though nearest
    w = make.warning(station, lat=LAT, lon=LON)
    offer = dispatch.dispatch(w, fake_clock.now())
    assert offer.officer_id == near.id and far.id != near.id
    assert 500 < offer.distance_m < 600
    assert w.status == "offered"
    assert kinds(w) == ["offered"]
    assert pushes(near.id) == [
        {"user_id": near.id, "push_kind": "offer", "warning_id": w.id, "offer_id": offer.id}
    ]
    due = {m.kind: m.due_at for m in db.session.scalars(sa.select(OutboxMessage))}
    # No device to push to: the SMS check is due at once (fallback.schedule).
    assert due["receipt_check"] == fake_clock.now()
    assert (due["offer_timeout"] - fake_clock.now()).total_seconds() == station.ack_timeout_s


def test_nearest_outside_the_first_box_beats_a_box_corner(make, station, fake_clock):
    # 2.9 km north and 2.9 km east (corner of the 3 km box, ~4.1 km away) vs 3.2 km north.
    dlat = 2900 / 111_195
    corner = make.user(station, on_duty=True, lat=LAT + dlat, lon=LON + dlat / 0.885)
    straight = make.user(station, on_duty=True, lat=LAT + 3200 / 111_195, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w, fake_clock.now()).officer_id == straight.id != corner.id


def test_no_location_uses_the_station(make, station, fake_clock):
    at_station = make.user(station, on_duty=True, lat=LAT + 0.001, lon=LON)
    make.user(station, on_duty=True, lat=LAT + 0.05, lon=LON + 0.05)
    w = make.warning(station, lat=None, lon=None)
    assert dispatch.dispatch(w, fake_clock.now()).officer_id == at_station.id


def test_tie_goes_to_the_lighter_workload(make, station, fake_clock):
    busy = make.user(station, on_duty=True, lat=LAT + 0.001, lon=LON)
    light = make.user(station, on_duty=True, lat=LAT + 0.0012, lon=LON)  # 22 m farther
    make.warning(station, status="accepted", owner_id=busy.id)
    w = make.warning(station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w, fake_clock.now()).officer_id == light.id


def test_beyond_the_tie_margin_distance_wins_over_workload(make, station, fake_clock):
    busy = make.user(station, on_duty=True, lat=LAT + 0.001, lon=LON)
    make.user(station, on_duty=True, lat=LAT + 0.002, lon=LON)  # 111 m farther
    make.warning(station, status="accepted", owner_id=busy.id)
    w = make.warning(station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w, fake_clock.now()).officer_id == busy.id


def test_stale_positions_do_not_count(make, station, fake_clock):
    make.user(station, on_duty=True, lat=LAT, lon=LON, position_age_s=station.position_stale_s + 1)
    fresh = make.user(station, on_duty=True, lat=LAT + 0.03, lon=LON, position_age_s=60)
    w = make.warning(station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w, fake_clock.now()).officer_id == fresh.id


@pytest.mark.parametrize("allowed", [False, True])
def test_auxiliaries_only_where_the_station_allows(make, fake_clock, allowed):
    station = make.station(lat=LAT, lon=LON, auxiliaries_take_offers=allowed)
    aux = make.user(station, "auxiliary", on_duty=True, lat=LAT, lon=LON)
    officer = make.user(station, "officer", on_duty=True, lat=LAT + 0.02, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    offer = dispatch.dispatch(w, fake_clock.now())
    assert offer.officer_id == (aux.id if allowed else officer.id)


def test_other_stations_officers_are_not_asked(make, station, fake_clock):
    other = make.station("O", lat=LAT, lon=LON)
    make.user(other, on_duty=True, lat=LAT, lon=LON)
    chief = make.user(station, "chief")
    w = make.warning(station, lat=LAT, lon=LON)
    assert dispatch.dispatch(w, fake_clock.now()) is None
    assert w.status == "unassigned"
    assert pushes() == [{"user_id": chief.id, "push_kind": "reminder", "warning_id": w.id}]


def test_nobody_on_duty_leaves_it_unassigned_and_alerts_every_chief(make, station, fake_clock):
    chiefs = [make.user(station, "chief"), make.user(station, "chief")]
    make.user(station, "chief", active=False)
    make.user(station, on_duty=False, lat=LAT, lon=LON)
    w = make.warning(station)
    assert dispatch.dispatch(w, fake_clock.now()) is None
    assert w.status == "unassigned" and w.owner_id is None
    assert kinds(w) == ["unassigned"]
    assert sorted(p["user_id"] for p in pushes()) == sorted(c.id for c in chiefs)


def test_decline_moves_on_to_the_next_nearest(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT + 0.001, lon=LON)
    b = make.user(station, on_duty=True, lat=LAT + 0.01, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    first = dispatch.decline(w, a, fake_clock.advance(5))
    assert first.status == "declined"
    offers = db.session.scalars(sa.select(Offer).order_by(Offer.id)).all()
    assert [(o.officer_id, o.status, o.rank) for o in offers] == [
        (a.id, "declined", 1),
        (b.id, "pending", 2),
    ]
    assert kinds(w) == ["offered", "declined", "offered"]
    with pytest.raises(refusals.Refusal) as err:
        dispatch.decline(w, a, fake_clock.now())
    assert err.value.code == "no_offer"


def test_timeout_chain_then_exhaustion(make, station, fake_clock):
    people = [make.user(station, on_duty=True, lat=LAT + 0.001 * i, lon=LON) for i in (1, 5, 9)]
    chief = make.user(station, "chief")
    w = make.warning(station, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    for expected in people:
        offer = db.session.scalar(sa.select(Offer).where(Offer.status == "pending"))
        assert offer.officer_id == expected.id
        fake_clock.advance(station.ack_timeout_s)
        assert dispatch.expire(offer, fake_clock.now()) is True
        assert dispatch.expire(offer, fake_clock.now()) is False  # idempotent
    assert w.status == "unassigned"
    assert kinds(w) == ["offered", "offer_expired"] * 3 + ["unassigned"]
    assert pushes(chief.id)[0]["push_kind"] == "reminder"


def test_expire_after_accept_does_nothing(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    make.user(station, on_duty=True, lat=LAT + 0.01, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    offer = dispatch.dispatch(w, fake_clock.now())
    dispatch.accept(w, a, fake_clock.advance(10))
    assert dispatch.expire(offer, fake_clock.advance(100)) is False
    assert w.status == "accepted" and w.owner_id == a.id


def test_accept_twice_and_without_offer(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    b = make.user(station, on_duty=True, lat=LAT + 0.05, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    with pytest.raises(refusals.Refusal) as err:
        dispatch.accept(w, b, fake_clock.now())
    assert err.value.code == "no_offer"
    dispatch.accept(w, a, fake_clock.now())
    with pytest.raises(refusals.Refusal) as err:
        dispatch.accept(w, a, fake_clock.now())
    assert err.value.code == "already_yours"


def test_reassign_tells_the_old_owner_and_withdraws_offers(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    b = make.user(station, on_duty=False)
    chief = make.user(station, "chief")
    w = make.warning(station, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    dispatch.accept(w, a, fake_clock.now())
    offer = dispatch.reassign(w, b, chief, fake_clock.advance(60))
    assert offer.officer_id == b.id and offer.reason == "reassign"
    assert w.owner_id is None and w.status == "offered"
    assert {"user_id": a.id, "push_kind": "reassigned", "warning_id": w.id} in pushes(a.id)
    assert kinds(w)[-2:] == ["reassigned", "offered"]
    with pytest.raises(refusals.Refusal) as err:
        dispatch.reassign(w, make.user(make.station(), on_duty=True), chief, fake_clock.now())
    assert err.value.code == "invitee_not_eligible"
    dispatch.accept(w, b, fake_clock.now())
    with pytest.raises(refusals.Refusal) as err:
        dispatch.reassign(w, b, chief, fake_clock.now())
    assert err.value.code == "already_theirs"


def test_reassign_while_offered_tells_the_offered_officer(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    b = make.user(station)
    chief = make.user(station, "chief")
    w = make.warning(station, lat=LAT, lon=LON)
    first = dispatch.dispatch(w, fake_clock.now())
    dispatch.reassign(w, b, chief, fake_clock.now())
    db.session.refresh(first)
    assert first.status == "cancelled"
    assert pushes(a.id)[-1]["push_kind"] == "reassigned"


def test_two_pending_offers_one_accept_wins(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    b = make.user(station, on_duty=True, lat=LAT + 0.05, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    dispatch.make_offer(w, b, fake_clock.now(), reason="help")
    dispatch.accept(w, b, fake_clock.now())
    with pytest.raises(refusals.Refusal) as err:
        dispatch.accept(w, a, fake_clock.now())
    # a's offer was cancelled by b's accept: a is told it was taken
    assert err.value.code == "taken"


@pytest.mark.postgres_only
@pytest.mark.skipif(not os.environ.get("FIELDAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_double_accept_from_two_connections_has_exactly_one_winner(app, make):
    station = make.station(lat=LAT, lon=LON)
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    b = make.user(station, on_duty=True, lat=LAT + 0.01, lon=LON)
    db.session.commit()
    a_id, b_id = a.id, b.id
    outcomes = {"won": 0, "taken": 0, "other": []}

    def contender(user_id, warning_id, barrier, results):
        with app.app_context():
            try:
                from fieldapp.models import User

                user = db.session.get(User, user_id)
                warning = db.session.get(Warning, warning_id)
                barrier.wait()
                dispatch.accept(warning, user)
                db.session.commit()
                results.append("won")
            except refusals.Refusal as exc:
                db.session.rollback()
                results.append(exc.code)
            finally:
                db.session.remove()

    for _ in range(100):
        w = make.warning(station, lat=LAT, lon=LON)
        dispatch.make_offer(w, db.session.get(type(a), a_id), w.received_at)
        dispatch.make_offer(w, db.session.get(type(b), b_id), w.received_at, reason="help")
        db.session.commit()
        barrier = threading.Barrier(2)
        results: list[str] = []
        threads = [
            threading.Thread(target=contender, args=(uid, w.id, barrier, results))
            for uid in (a_id, b_id)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        db.session.expire_all()
        owner = db.session.get(Warning, w.id).owner_id
        assert sorted(results) == ["taken", "won"], results
        accepted = db.session.scalars(
            sa.select(Offer.officer_id).where(Offer.warning_id == w.id, Offer.status == "accepted")
        ).all()
        assert accepted == [owner]
        outcomes["won"] += 1
    assert outcomes["won"] == 100


def test_going_off_duty_hands_pending_offers_to_the_next_officer(make, station, fake_clock):
    a = make.user(station, on_duty=True, lat=LAT, lon=LON)
    b = make.user(station, on_duty=True, lat=LAT + 0.01, lon=LON)
    w = make.warning(station, lat=LAT, lon=LON)
    first = dispatch.dispatch(w, fake_clock.now())
    assert first.officer_id == a.id
    assert duty.set_duty(a, "off_duty", fake_clock.advance(5)) == [first]
    assert a.duty_status == "off_duty" and first.status == "declined"
    pending = db.session.scalar(sa.select(Offer).where(Offer.status == "pending"))
    assert pending.officer_id == b.id
    assert kinds(w) == ["offered", "declined", "offered"]
    assert duty.set_duty(a, "off_duty", fake_clock.now()) == []  # no change, no event


def _unsaved_warning(station, fake_clock, **kw):
    now = fake_clock.now()
    values = dict(
        source_ref=f"NEW-{id(kw)}",
        person_name="张三",
        person_phone="13800138000",
        fraud_type="fake_loan",
        risk_level="high",
        lat=LAT,
        lon=LON,
        station_id=station.id,
        status="received",
        received_at=now,
        last_action_at=now,
    )
    values.update(kw)
    return Warning(**values)


def test_a_new_warning_is_planned_before_its_insert_and_written_once(make, station, fake_clock):
    near = make.user(station, on_duty=True, lat=LAT + 0.001, lon=LON)
    make.user(station, on_duty=True, lat=LAT + 0.01, lon=LON)
    w = _unsaved_warning(station, fake_clock)
    [offer] = dispatch.plan_first(w, station, fake_clock.now())
    assert w.id is None and offer.officer_id == near.id and offer.rank == 1
    assert w.status == "offered"
    updates = []

    def seen(_conn, _cursor, statement, *_rest):
        updates.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        db.session.add(w)
        db.session.flush()  # warning and offer together, the warning with its final status
        push = dispatch.announce_first(w, [offer], fake_clock.now())
        db.session.flush()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert not [s for s in updates if s.lstrip().upper().startswith("UPDATE WARNINGS")]
    assert offer.warning_id == w.id and kinds(w) == ["offered"]
    assert push.payload == {
        "user_id": near.id,
        "push_kind": "offer",
        "warning_id": w.id,
        "offer_id": offer.id,
    }
    due = sorted(m.kind for m in db.session.scalars(sa.select(OutboxMessage)))
    assert due == ["offer_timeout", "push", "receipt_check"]


def test_a_new_warning_with_nobody_to_ask_is_stored_unassigned(make, station, fake_clock):
    chief = make.user(station, "chief")
    w = _unsaved_warning(station, fake_clock, source_ref="NEW-nobody")
    assert dispatch.plan_first(w, station, fake_clock.now()) == []
    assert w.status == "unassigned"
    db.session.add(w)
    db.session.flush()
    assert dispatch.announce_first(w, [], fake_clock.now()) is None
    assert kinds(w) == ["unassigned"]
    assert pushes() == [{"user_id": chief.id, "push_kind": "reminder", "warning_id": w.id}]
