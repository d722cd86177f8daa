"""Colleagues helping: join only when asked, never to take a warning over (issue 14, finding 4;
issue 10: no Join for the officer it is offered to; issue 14, finding 9: help request limits)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import dispatch, fieldwork, helping, refusals
from fieldapp.extensions import db
from fieldapp.models import (
    ContactAttempt,
    Event,
    HelpRequest,
    Offer,
    OutboxMessage,
    Outcome,
    Participant,
    Warning,
)
from tests.fieldsetup import cid


def send(auth, *entries):
    resp = auth.post_json("/api/v1/sync", {"entries": list(entries)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["results"]


def entry(kind, warning_id, **data):
    return {"client_id": cid(), "kind": kind, "warning_id": warning_id, "data": data}


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def changes() -> int:
    """Events that record a change (reading a resident's page is audited, but changes nothing)."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Event).where(Event.kind != "resident_viewed")
    )


def refused(code, call, *args, **kw):
    with pytest.raises(refusals.Refusal) as exc:
        call(*args, **kw)
    db.session.rollback()
    assert exc.value.code == code, exc.value.code


def test_join_without_a_request_is_refused_everywhere(field, auth, client):
    """Finding 4: any colleague could join and then close any open warning of the station."""
    refused("join_not_asked", helping.join, field.warning, field.colleague)
    auth.login("mj2")
    [r] = send(auth, entry("join", field.warning.id))
    assert r["status"] == "rejected" and r["code"] == "join_not_asked"
    assert "请求" in r["detail"]  # says why, in Chinese by default
    token = auth.csrf(f"/field/w/{field.warning.id}")
    form = {"csrf_token": token, "client_id": cid(), "kind": "join"}
    resp = client.post(f"/field/w/{field.warning.id}/entry", data=form)
    # No Join button to put it next to: the page says it at the top.
    assert resp.status_code == 422 and r["detail"] in resp.get_data(as_text=True)
    assert count(Participant) == 0


def test_a_participant_logs_attempts_but_only_the_owner_or_a_chief_resolves(field, auth):
    helping.request_help(field.warning, field.officer)
    helping.join(field.warning, field.colleague)
    db.session.commit()
    auth.login("mj2")
    r = send(
        auth,
        entry("attempt", field.warning.id, channel="wechat_video", reached=True),
        entry("resolve", field.warning.id, outcome="persuaded"),
    )
    assert [x["status"] for x in r] == ["applied", "rejected"]
    assert r[1]["code"] == "not_owner" and r[1]["errors"] == {"data.outcome": r[1]["detail"]}
    assert count(Outcome) == 0 and db.session.get(Warning, field.warning.id).is_open
    assert fieldwork.may_resolve(field.warning, field.officer)
    assert fieldwork.may_resolve(field.warning, field.chief)
    assert not fieldwork.may_resolve(field.warning, field.colleague)
    fieldwork.resolve(field.warning, field.chief, client_id=cid(), outcome="not_fraud")
    db.session.commit()
    assert field.warning.outcome.recorded_by_id == field.chief.id


def test_join_never_overrides_a_reassignment_nor_cancels_the_holders_offer(field, make):
    helping.request_help(field.warning, field.officer)
    third = make.user(field.station, "officer", "mj3", on_duty=True)
    offer = dispatch.reassign(field.warning, field.colleague, field.chief)
    db.session.commit()
    # The old owner's call for help closed with the reassignment.
    assert db.session.scalar(sa.select(HelpRequest.closed_at)) is not None
    refused("join_not_asked", helping.join, field.warning, third)
    helping.ask_to_join(field.warning, third, field.chief)
    helping.join(field.warning, third)
    db.session.commit()
    db.session.refresh(offer)
    assert offer.status == "pending" and field.warning.owner_id is None
    refused(
        "not_owner", fieldwork.resolve, field.warning, third, client_id=cid(), outcome="refused"
    )
    assert db.session.get(Offer, offer.id).status == "pending"


def test_join_is_refused_to_the_officer_holding_the_offer(field, make, auth, client):
    """Issue 10, finding 4: Join beside Accept left the offer pending until it timed out."""
    w = make.warning(field.station)
    dispatch.make_offer(w, field.colleague, w.received_at)
    db.session.commit()
    # A chief cannot ask the officer it is offered to either.
    refused("invitee_has_offer", helping.ask_to_join, w, field.colleague, field.chief)
    w3 = make.warning(field.station)
    dispatch.make_offer(w3, field.colleague, w3.received_at)
    dispatch.make_offer(w3, field.officer, w3.received_at, reason="help")
    dispatch.accept(w3, field.officer)
    dispatch.make_offer(w3, field.colleague, w3.received_at, reason="help")
    helping.request_help(w3, field.officer)
    db.session.commit()
    assert not helping.may_join(w3, field.colleague)
    refused("offer_pending", helping.join, w3, field.colleague)
    auth.login("mj2")
    [r] = send(auth, entry("join", w3.id))
    assert r["status"] == "rejected" and r["code"] == "offer_pending"
    html = client.get(f"/field/w/{w3.id}").get_data(as_text=True)
    assert 'data-kind="accept"' in html and 'data-kind="join"' not in html


def test_auxiliaries_answer_the_stations_call_only_where_they_take_warnings(field, auth):
    notified = helping.request_help(field.warning, field.officer)
    db.session.commit()
    assert notified == [field.colleague.id]  # the auxiliary is not woken for it
    assert not helping.may_join(field.warning, field.aux)
    auth.login("fj1")
    [r] = send(auth, entry("join", field.warning.id))
    assert r["code"] == "aux_needs_chief"
    # A chief may ask one by name; the request is answered by the join.
    helping.ask_to_join(field.warning, field.aux, field.chief)
    db.session.commit()
    assert helping.may_join(field.warning, field.aux)
    [r] = send(auth, entry("join", field.warning.id))
    assert r["status"] == "applied"
    named = db.session.scalar(
        sa.select(HelpRequest).where(HelpRequest.invited_user_id.is_not(None))
    )
    assert named.closed_at is not None


def test_help_requests_are_limited_per_officer_and_warning(field, auth, fake_clock):
    """Finding 9: every request wakes the whole station."""
    auth.login("mj1")
    [first, again] = send(auth, entry("help", field.warning.id), entry("help", field.warning.id))
    assert first["status"] == "applied" and again["code"] == "help_too_soon"
    assert "5" in again["detail"]
    for _ in range(2):
        fake_clock.advance(minutes=6)
        [r] = send(auth, entry("help", field.warning.id))
        assert r["status"] == "applied"
    fake_clock.advance(minutes=6)
    [r] = send(auth, entry("help", field.warning.id))
    assert r["code"] == "help_limit" and "3" in r["detail"]
    pushes = db.session.scalars(sa.select(OutboxMessage.payload)).all()
    assert sum(p.get("push_kind") == "help" for p in pushes) == 3  # one colleague, three asks


def test_chief_asks_a_named_officer_from_the_board(field, auth, client, make):
    auth.login("sz1")
    page = client.get(f"/board/warnings/{field.warning.id}").get_data(as_text=True)
    assert "ask-to-join" in page
    token = auth.csrf(f"/board/warnings/{field.warning.id}")
    url = f"/board/warnings/{field.warning.id}/ask-to-join"
    resp = client.post(url, data={"csrf_token": token, "user_id": str(field.colleague.id)})
    assert resp.status_code == 302
    event = db.session.scalar(sa.select(Event).where(Event.kind == "join_requested"))
    assert event.data == {"user_id": field.colleague.id} and event.actor_id == field.chief.id
    push = db.session.scalar(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()))
    assert push.payload["user_id"] == field.colleague.id and push.payload["push_kind"] == "help"
    page = client.get(f"/board/warnings/{field.warning.id}").get_data(as_text=True)
    assert "加入协助" in page  # the timeline says who was asked
    # Refusals change nothing: the owner, another station's officer, garbage.
    for user_id in (str(field.officer.id), str(field.stranger.id), "99999999999", "²"):
        resp = client.post(url, data={"csrf_token": token, "user_id": user_id})
        assert resp.status_code == 302
    assert count(HelpRequest) == 1
    auth.logout()
    auth.login("mj1")
    assert client.post(url, data={"csrf_token": token, "user_id": "1"}).status_code in (400, 403)
    other_chief = make.user(field.other_station, "chief", "szx")
    db.session.commit()
    auth.logout()
    auth.login(other_chief.username)
    token = auth.csrf("/board/")
    assert client.post(url, data={"csrf_token": token, "user_id": "1"}).status_code == 404


def test_join_records_how_it_was_asked(field, fake_clock):
    helping.request_help(field.warning, field.officer)
    helping.join(field.warning, field.colleague)
    db.session.commit()
    event = db.session.scalar(sa.select(Event).where(Event.kind == "joined"))
    assert event.data["asked_by"] == "help"
    refused("already_joined", helping.join, field.warning, field.colleague)
    refused("field_roles_only", helping.join, field.warning, field.chief)
    refused("not_found", helping.join, field.warning, field.stranger)
    fieldwork.log_attempt(
        field.warning, field.colleague, client_id=cid(), channel="phone", reached=True
    )
    fieldwork.resolve(field.warning, field.officer, client_id=cid(), outcome="persuaded")
    db.session.commit()
    assert db.session.scalar(sa.select(HelpRequest.closed_at)) is not None
    refused("resolved", helping.request_help, field.warning, field.officer)
    assert count(ContactAttempt) == 1
    assert field.warning.first_contact_at >= field.warning.received_at - timedelta(0)


def test_an_auxiliary_takes_an_offer_only_where_the_station_allows_it(field, make, auth):
    w = make.warning(field.station)
    dispatch.make_offer(w, field.aux, w.received_at)  # offered while the station allowed it
    db.session.commit()
    auth.login("fj1")
    [r] = send(auth, {"client_id": cid(), "kind": "accept", "warning_id": w.id})
    assert r["status"] == "rejected" and r["code"] == "not_eligible"
    assert db.session.get(Warning, w.id).owner_id is None
    w2 = make.warning(field.station)
    dispatch.reassign(w2, field.aux, field.chief)  # a chief's own choice stands
    db.session.commit()
    [r] = send(auth, {"client_id": cid(), "kind": "accept", "warning_id": w2.id})
    assert r["status"] == "applied"


@pytest.mark.parametrize("value", ["²", "99999999999999999999", "٣", ""])
def test_reassign_form_refuses_odd_ids_without_a_500(field, auth, client, value):
    auth.login("sz1")
    token = auth.csrf(f"/board/warnings/{field.warning.id}")
    resp = client.post(
        f"/board/warnings/{field.warning.id}/reassign",
        data={"csrf_token": token, "to_user_id": value},
    )
    assert resp.status_code == 302
    assert db.session.get(Warning, field.warning.id).owner_id == field.officer.id


def _form(auth, client, warning_id, **fields):
    token = auth.csrf(f"/field/w/{warning_id}")
    data = {"csrf_token": token, "client_id": cid(), **fields}
    return client.post(f"/field/w/{warning_id}/entry", data=data)


def test_each_refusal_on_the_form_path_is_a_422_that_says_why(field, auth, client, make):
    w = make.warning(field.station)
    dispatch.make_offer(w, field.colleague, w.received_at)
    helping.request_help(field.warning, field.officer)
    helping.join(field.warning, field.colleague)
    db.session.commit()
    cases = [
        ("mj2", w.id, {"kind": "join"}, "offer_pending"),
        ("mj2", field.warning.id, {"kind": "resolve", "outcome": "refused"}, "not_owner"),
        ("mj1", field.warning.id, {"kind": "help"}, "help_too_soon"),
        ("fj1", field.warning.id, {"kind": "join"}, "aux_needs_chief"),
        (
            "mj1",
            field.warning.id,
            {"kind": "resolve", "outcome": "not_fraud", "follow_up_at": "2099-01-01T09:00"},
            "follow_up_too_far",
        ),
    ]
    for login, warning_id, fields, code in cases:
        auth.login(login)
        before = (count(Participant), count(Outcome), count(HelpRequest), changes())
        resp = _form(auth, client, warning_id, **fields)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422, code
        assert refusals.message(code) in html, code
        assert (count(Participant), count(Outcome), count(HelpRequest), changes()) == before
        auth.logout()
