"""POST /api/v1/sync: each entry applied exactly once, on its own, with a readable result."""

from datetime import timedelta

import sqlalchemy as sa

from fieldapp import dispatch
from fieldapp.extensions import db
from fieldapp.models import ClientMutation, ContactAttempt, Outcome, Warning
from tests.fieldsetup import cid


def attempt(warning_id, client_id=None, **data):
    body = {"channel": "phone", "reached": True, **data}
    return {
        "client_id": client_id or cid(),
        "kind": "attempt",
        "warning_id": warning_id,
        "data": body,
    }


def send(auth, *entries):
    resp = auth.post_json("/api/v1/sync", {"entries": list(entries)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["results"]


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_applied_then_duplicate_with_the_same_detail(field, auth):
    auth.login("mj1")
    entry = attempt(field.warning.id, recorded_at="2026-11-25T09:58:00+08:00")
    [first] = send(auth, entry)
    assert first["status"] == "applied" and first["client_id"] == entry["client_id"]
    assert first["attempt_id"]
    [again] = send(auth, entry)
    assert again["status"] == "duplicate"
    assert again["detail"] == first["detail"] and again["attempt_id"] == first["attempt_id"]
    assert count(ContactAttempt) == 1
    w = db.session.get(Warning, field.warning.id)
    assert w.status == "in_contact"


def test_double_entry_in_one_batch_records_once(field, auth):
    auth.login("mj1")
    entry = attempt(field.warning.id)
    results = send(auth, entry, entry)
    assert [r["status"] for r in results] == ["applied", "duplicate"]
    assert count(ContactAttempt) == 1


def test_mixed_batch_each_entry_on_its_own(field, auth, fake_clock):
    auth.login("mj1")
    good = attempt(field.warning.id)
    bad = attempt(field.warning.id, channel="carrier_pigeon")
    no_id = {"kind": "attempt", "warning_id": field.warning.id, "data": {}}
    resolve = {
        "client_id": cid(),
        "kind": "resolve",
        "warning_id": field.warning.id,
        "data": {"outcome": "persuaded", "app_installed": True},
    }
    late = attempt(field.warning.id)
    results = send(auth, good, bad, no_id, resolve, late, "not an object")
    assert [r["status"] for r in results] == [
        "applied",
        "rejected",
        "rejected",
        "applied",
        "conflict",
        "rejected",
    ]
    assert "data.channel" in results[1]["errors"]
    assert results[2]["client_id"] is None and "client_id" in results[2]["errors"]
    assert results[4]["code"] == "resolved" and results[4]["detail"]
    assert count(ContactAttempt) == 1 and count(Outcome) == 1
    outcome = db.session.scalar(sa.select(Outcome))
    assert outcome.app_installed is True and outcome.client_id == resolve["client_id"]
    # A replay of the conflict tells the same story and changes nothing.
    [again] = send(auth, late)
    assert again["status"] == "conflict" and again["detail"] == results[4]["detail"]


def test_conflict_when_reassigned(field, auth, fake_clock):
    dispatch.reassign(field.warning, field.colleague, field.chief, fake_clock.now())
    db.session.commit()
    auth.login("mj1")
    [r] = send(auth, attempt(field.warning.id))
    assert r["status"] == "conflict" and r["code"] == "reassigned"
    assert "改派" in r["detail"]  # Chinese by default
    assert count(ContactAttempt) == 0


def test_accept_and_decline_through_sync(field, auth, make, fake_clock):
    w2 = make.warning(field.station)
    dispatch.make_offer(w2, field.colleague, fake_clock.now())
    w3 = make.warning(field.station)
    dispatch.make_offer(w3, field.colleague, fake_clock.now())
    db.session.commit()
    auth.login("mj2")
    acc = {"client_id": cid(), "kind": "accept", "warning_id": w2.id}
    dec = {"client_id": cid(), "kind": "decline", "warning_id": w3.id}
    r = send(auth, acc, dec, acc)
    assert [x["status"] for x in r] == ["applied", "applied", "duplicate"]
    assert db.session.get(Warning, w2.id).owner_id == field.colleague.id
    # Accepting an offer that was already taken is a conflict the officer can read.
    [late] = send(auth, {"client_id": cid(), "kind": "accept", "warning_id": field.warning.id})
    assert late["status"] == "conflict"


def test_other_station_warning_is_rejected_without_leaking(field, auth, make):
    theirs = make.warning(field.other_station)
    db.session.commit()
    auth.login("mj1")
    r = send(auth, attempt(theirs.id), attempt(999_999))
    assert [x["status"] for x in r] == ["rejected", "rejected"]
    assert r[0]["detail"] == r[1]["detail"] and r[0]["code"] == r[1]["code"] == "not_found"


def test_client_id_of_another_user_is_rejected(field, auth, client):
    auth.login("mj1")
    entry = attempt(field.warning.id)
    send(auth, entry)
    auth.logout()
    auth.login("mj2")
    [r] = send(auth, entry)
    assert r["status"] == "rejected"
    assert count(ContactAttempt) == 1


def test_help_join_confirm_and_visit_rule(field, auth, client):
    field.station.require_visit_for_high_risk = True
    field.station.auxiliaries_take_offers = True
    db.session.commit()
    auth.login("mj1")
    phone = attempt(field.warning.id, channel="phone")
    help_ = {"client_id": cid(), "kind": "help", "warning_id": field.warning.id}
    resolve = {
        "client_id": cid(),
        "kind": "resolve",
        "warning_id": field.warning.id,
        "data": {"outcome": "persuaded"},
    }
    r = send(auth, phone, help_, resolve)
    assert [x["status"] for x in r] == ["applied", "applied", "rejected"]
    assert r[2]["code"] == "visit_required"
    assert r[1]["notified"] == 2
    auth.logout()
    auth.login("fj1")
    join = {"client_id": cid(), "kind": "join", "warning_id": field.warning.id}
    visit = attempt(field.warning.id, channel="visit")
    confirm = {
        "client_id": cid(),
        "kind": "confirm",
        "warning_id": field.warning.id,
        "data": {"attempt_id": r[0]["attempt_id"]},
    }
    r2 = send(auth, join, visit, confirm)
    assert [x["status"] for x in r2] == ["applied", "applied", "applied"]
    auth.logout()
    auth.login("mj1")
    # The rejected entry was not remembered: sent again after the visit, it applies.
    [ok] = send(auth, resolve)
    assert ok["status"] == "applied"


def test_bad_bodies_get_422_never_500(field, auth, client):
    auth.login("mj1")
    for body in ({}, {"entries": "x"}, {"entries": [{}] * 201}):
        resp = auth.post_json("/api/v1/sync", body)
        assert resp.status_code == 422 and "errors" in resp.get_json()
    resp = client.post("/api/v1/sync", data="nope", headers={"X-CSRFToken": auth.csrf("/")})
    assert resp.status_code == 422


def test_needs_login_and_csrf(field, client, auth):
    assert client.post("/api/v1/sync", json={"entries": []}).status_code in (400, 401)
    auth.login("mj1")
    assert client.post("/api/v1/sync", json={"entries": []}).status_code == 400  # no CSRF
    auth.logout()
    auth.login("sz1")
    assert auth.post_json("/api/v1/sync", {"entries": []}).status_code == 403


def test_follow_up_from_sync_and_openapi(field, auth, client, fake_clock):
    auth.login("mj1")
    due = (fake_clock.now() + timedelta(days=3)).isoformat()
    entry = {
        "client_id": cid(),
        "kind": "resolve",
        "warning_id": field.warning.id,
        "data": {"outcome": "not_fraud", "follow_up_at": due},
    }
    [r] = send(auth, entry)
    assert r["status"] == "applied"
    html = client.get("/field/").get_data(as_text=True)
    assert f"/field/w/{field.warning.id}" in html and "回访" in html
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "post" in doc["paths"]["/api/v1/sync"]
    entries = doc["components"]["schemas"]["SyncIn"]["properties"]["entries"]
    assert entries["items"]["anyOf"][0]["title"] == "SyncEntry"
    assert db.session.get(ClientMutation, entry["client_id"]).status == "applied"


def test_hostile_values_are_rejected_not_500(field, auth):
    auth.login("mj1")
    entries = [
        attempt(2**40),
        attempt(field.warning.id, note="a\x00b"),
        {
            "client_id": cid(),
            "kind": "confirm",
            "warning_id": field.warning.id,
            "data": {"attempt_id": 2**40},
        },
        {
            "client_id": cid(),
            "kind": "resolve",
            "warning_id": field.warning.id,
            "data": {"outcome": "already_lost", "loss_amount": "lots"},
        },
        {"client_id": "x" * 65, "kind": "help", "warning_id": field.warning.id},
        {"client_id": cid(), "kind": "teleport", "warning_id": field.warning.id},
    ]
    results = send(auth, *entries)
    assert [r["status"] for r in results] == ["rejected"] * 6
    assert count(ContactAttempt) == 0 and count(Outcome) == 0
