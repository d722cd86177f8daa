"""Issue 12.8: high-risk warnings offered to the N nearest at once; the first accept wins."""

import re

import pytest
import sqlalchemy as sa

from fieldapp import dispatch, periods, push, refusals, workload
from fieldapp.extensions import db
from fieldapp.live.items import Facts, _stream_item
from fieldapp.models import Event, Offer, OutboxMessage, Station

LAT, LON = 27.8170, 114.9230
FIELD_PREFIX = "/field"


@pytest.fixture
def scene(make, fake_clock):
    """A station offering high risk to 2 at once; officers 1..4 ever farther; a chief."""
    st = make.station("P", lat=LAT, lon=LON, parallel_offers_high=2)
    officers = [
        make.user(st, on_duty=True, lat=LAT + 0.001 * k, lon=LON, username=f"p{k}")
        for k in (1, 2, 3, 4)
    ]
    chief = make.user(st, "chief", "p_chief")
    return st, officers, chief


def pending(w) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(Offer.officer_id)
            .where(Offer.warning_id == w.id, Offer.status == "pending")
            .order_by(Offer.id)
        )
    )


def statuses(w) -> dict[int, str]:
    rows = db.session.execute(
        sa.select(Offer.officer_id, Offer.status).where(Offer.warning_id == w.id).order_by(Offer.id)
    )
    return dict(rows.all())


def pushes(kind: str) -> list[int]:
    rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "push"))
    return [r.payload["user_id"] for r in rows if r.payload["push_kind"] == kind]


def test_the_default_is_two_and_other_risk_levels_get_one(make, scene, fake_clock):
    st, (a, b, c, _d), _chief = scene
    fresh = Station(code="DEF", name="default", lat=LAT, lon=LON)
    db.session.add(fresh)
    db.session.flush()
    assert fresh.parallel_offers_high == 2
    high = make.warning(st, lat=LAT, lon=LON, risk_level="high")
    dispatch.dispatch(high, fake_clock.now())
    assert pending(high) == [a.id, b.id]
    ranks = db.session.scalars(sa.select(Offer.rank).where(Offer.warning_id == high.id))
    assert sorted(ranks) == [1, 2]
    medium = make.warning(st, lat=LAT, lon=LON, risk_level="medium")
    dispatch.dispatch(medium, fake_clock.now())
    assert len(pending(medium)) == 1


def test_first_accept_wins_and_the_others_are_told_taken(make, scene, fake_clock):
    st, (a, b, _c, _d), _chief = scene
    w = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    assert sorted(pushes("offer")) == [a.id, b.id]
    dispatch.accept(w, b, fake_clock.advance(10))
    assert w.owner_id == b.id and w.status == "accepted"
    assert statuses(w) == {a.id: "taken", b.id: "accepted"}
    assert pushes("taken") == [a.id]
    with pytest.raises(refusals.Refusal) as refused:
        dispatch.accept(w, a, fake_clock.advance(1))
    assert refused.value.code == "taken"
    # The push says what happened and nothing about the resident.
    message = db.session.scalar(
        sa.select(OutboxMessage)
        .where(OutboxMessage.kind == "push")
        .order_by(OutboxMessage.id.desc())
    )
    payload = push.build_payload("m1", "taken", a, w)
    assert payload["kind"] == "taken" and "offer_id" not in message.payload
    text = payload["title"] + payload["body"]
    assert w.person_name not in text and w.person_phone not in text
    # The live stream: a `taken` item for the officer who lost the race, for nobody else.
    event = db.session.scalar(sa.select(Event).where(Event.kind == "offer_taken"))
    facts = Facts.load(event)
    assert _stream_item(facts, a.id, "zh_CN")["kind"] == "taken"
    assert _stream_item(facts, b.id, "zh_CN") is None


def test_the_warning_moves_on_only_when_every_parallel_offer_is_declined(make, scene, fake_clock):
    st, (a, b, c, d), _chief = scene
    w = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    dispatch.decline(w, a, fake_clock.advance(5))
    assert pending(w) == [b.id] and w.status == "offered"
    dispatch.decline(w, b, fake_clock.advance(5))
    assert pending(w) == [c.id, d.id]  # the next two nearest not yet asked
    ranks = db.session.scalars(
        sa.select(Offer.rank).where(Offer.warning_id == w.id, Offer.status == "pending")
    )
    assert sorted(ranks) == [3, 4]


def test_timeouts_move_on_when_the_last_parallel_offer_expires(make, scene, fake_clock):
    st, (a, b, c, d), _chief = scene
    w = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    offer_a, offer_b = (db.session.get(Offer, i) for i in sorted(o.id for o in w.offers))
    fake_clock.advance(st.ack_timeout_s + 1)
    assert dispatch.expire(offer_a, fake_clock.now())
    assert pending(w) == [b.id]
    dispatch.decline(w, b, fake_clock.now())  # a decline and a timeout together also move on
    assert pending(w) == [c.id, d.id]
    assert not dispatch.expire(offer_a, fake_clock.now())  # already over: nothing twice


def test_reassign_cancels_every_pending_parallel_offer(make, scene, fake_clock):
    st, (a, b, _c, d), chief = scene
    w = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    dispatch.reassign(w, d, chief, fake_clock.advance(20))
    assert statuses(w) == {a.id: "cancelled", b.id: "cancelled", d.id: "pending"}
    assert sorted(pushes("reassigned")) == [a.id, b.id]
    assert pushes("taken") == []


def test_workload_counts_a_taken_offer_as_neither_decline_nor_timeout(make, scene, fake_clock):
    st, (a, b, c, d), _chief = scene
    w = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    dispatch.accept(w, a, fake_clock.advance(10))  # b's offer: taken
    v = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(v, fake_clock.now())  # a and b again (no tie: 111 m apart)
    assert pending(v) == [a.id, b.id]
    dispatch.decline(v, a, fake_clock.advance(5))
    offer_b = db.session.scalar(
        sa.select(Offer).where(Offer.warning_id == v.id, Offer.officer_id == b.id)
    )
    assert dispatch.expire(offer_b, fake_clock.advance(st.ack_timeout_s + 1))
    db.session.commit()
    period = periods.preset("today", fake_clock.now())
    rows = {row.user_id: row for row in workload.workload(period, st.id)}
    # (offers, accepts, declines, timeouts, taken)
    got = {uid: (r.offers, r.accepts, r.declines, r.timeouts, r.taken) for uid, r in rows.items()}
    assert got[a.id] == (2, 1, 1, 0, 0)
    assert got[b.id] == (2, 0, 0, 1, 1)
    assert got[c.id] == got[d.id] == (1, 0, 0, 0, 0)  # v moved on to the next two


def test_the_officer_whose_offer_was_taken_sees_it_with_accept_disabled(
    make, scene, fake_clock, client, auth
):
    st, (a, b, _c, _d), _chief = scene
    w = make.warning(st, lat=LAT, lon=LON)
    dispatch.dispatch(w, fake_clock.now())
    dispatch.accept(w, a, fake_clock.advance(5))
    db.session.commit()
    auth.login(b.username)
    html = client.get(f"{FIELD_PREFIX}/w/{w.id}").get_data(as_text=True)
    assert "已被其他民警接受" in html
    after = html.split("已被其他民警接受", 1)[1]
    assert re.search(r"<button[^>]*disabled[^>]*>接受</button>", after)


@pytest.mark.parametrize(
    ("who", "value", "status", "stored"),
    [
        ("p_chief", "3", 302, 3),
        ("p_admin", "5", 302, 5),
        ("other_chief", "3", 404, 2),
        ("p1", "3", 403, 2),
        ("p_chief", "0", 422, 2),
        ("p_chief", "6", 422, 2),
        ("p_chief", "two", 422, 2),
        ("p_chief", "", 422, 2),
    ],
)
def test_only_the_chief_or_an_admin_sets_it_within_1_to_5(
    make, scene, client, auth, who, value, status, stored
):
    st, _officers, _chief = scene
    st.parallel_offers_high = 2
    make.user(st, "admin", "p_admin")
    make.user(make.station("Q"), "chief", "other_chief")
    db.session.commit()
    auth.login(who)
    url = f"/board/stations/{st.id}/settings"
    token = auth.csrf("/")
    resp = client.post(url, data={"parallel_offers_high": value, "csrf_token": token})
    assert resp.status_code == status
    db.session.expire_all()
    assert db.session.get(Station, st.id).parallel_offers_high == stored
    if status == 422:
        assert "1" in resp.get_data(as_text=True) and "5" in resp.get_data(as_text=True)


def test_a_high_risk_warning_from_the_centre_goes_to_two_at_once(make, scene, client):
    st, (a, b, _c, _d), _chief = scene
    _row, token = make.token(st)
    db.session.commit()
    body = make.intake_body(location=None, station_code=st.code, risk_level="high")
    resp = client.post("/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201
    w_id = resp.get_json()["id"]
    offered = db.session.scalars(
        sa.select(Offer.officer_id).where(Offer.warning_id == w_id).order_by(Offer.rank)
    )
    assert list(offered) == [a.id, b.id]
    assert sorted(pushes("offer")) == [a.id, b.id]
