"""No tap, default or hidden error may write what did not happen (issue 10, server side), and
no entry can fail a whole sync batch (issue 14, finding 8): through /api/v1/sync and through
the no-JavaScript form path."""

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from fieldapp import dispatch, fieldread, fieldwork, helping, refusals, sync
from fieldapp.extensions import db
from fieldapp.models import ClientMutation, ContactAttempt, Outcome, Participant
from tests.fieldsetup import cid


def send(auth, *entries):
    resp = auth.post_json("/api/v1/sync", {"entries": list(entries)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["results"]


def entry(kind, warning_id, **data):
    return {"client_id": cid(), "kind": kind, "warning_id": warning_id, "data": data}


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def post_form(auth, client, warning_id, **fields):
    token = auth.csrf(f"/field/w/{warning_id}")
    form = {"csrf_token": token, "client_id": cid(), **fields}
    return client.post(f"/field/w/{warning_id}/entry", data=form)


# --- every answer that feeds a figure is an explicit choice ------------------------------


@pytest.mark.parametrize("data", [{"channel": "phone"}, {"channel": "phone", "reached": None}])
def test_an_attempt_without_reached_is_rejected_through_sync(field, auth, data):
    auth.login("mj1")
    [r] = send(
        auth, {"client_id": cid(), "kind": "attempt", "warning_id": field.warning.id, "data": data}
    )
    assert r["status"] == "rejected" and r["code"] == "reached_required"
    assert r["errors"] == {"data.reached": r["detail"]} and "联系上" in r["detail"]
    assert count(ContactAttempt) == 0 and count(ClientMutation) == 0


def test_an_attempt_without_reached_is_refused_at_the_field_on_the_form_path(field, auth, client):
    auth.login("mj1")
    resp = post_form(
        auth, client, field.warning.id, kind="attempt", channel="phone", note="打了两次"
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    message = refusals.message("reached_required")
    assert f'id="attempt-reached-error">{message}</p>' in html
    assert "打了两次</textarea>" in html  # the typed note is kept
    assert count(ContactAttempt) == 0
    # Not reached is a choice like any other, and is stored as such.
    resp = post_form(auth, client, field.warning.id, kind="attempt", channel="phone", reached="no")
    assert resp.status_code == 302
    assert db.session.scalar(sa.select(ContactAttempt.reached)) is False


def test_persuaded_needs_a_reached_contact(field, auth, client):
    """Issue 10, finding 2: 劝阻成功 was accepted after a single not-reached phone attempt."""
    auth.login("mj1")
    r = send(
        auth,
        entry("attempt", field.warning.id, channel="phone", reached=False),
        entry("resolve", field.warning.id, outcome="persuaded", note="已劝阻"),
    )
    assert [x["status"] for x in r] == ["applied", "rejected"]
    assert r[1]["code"] == "contact_required" and r[1]["errors"] == {"data.outcome": r[1]["detail"]}
    resp = post_form(
        auth, client, field.warning.id, kind="resolve", outcome="persuaded", note="已劝阻"
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="resolve-outcome-error"' in html
    assert 'value="persuaded" checked' in html and "已劝阻</textarea>" in html
    assert count(Outcome) == 0
    # A reached contact by anyone of the station who works on it (here a colleague) suffices.
    helping.request_help(field.warning, field.officer)
    helping.join(field.warning, field.colleague)
    fieldwork.log_attempt(
        field.warning, field.colleague, client_id=cid(), channel="wechat_video", reached=True
    )
    db.session.commit()
    [ok] = send(auth, entry("resolve", field.warning.id, outcome="persuaded"))
    assert ok["status"] == "applied"


def test_the_visit_rule_stays_on_top(field, auth):
    field.station.require_visit_for_high_risk = True
    db.session.commit()
    auth.login("mj1")
    r = send(
        auth,
        entry("resolve", field.warning.id, outcome="persuaded"),
        entry("attempt", field.warning.id, channel="phone", reached=True),
        entry("resolve", field.warning.id, outcome="persuaded"),
        entry("attempt", field.warning.id, channel="visit", reached=True),
        entry("resolve", field.warning.id, outcome="persuaded"),
    )
    assert [x.get("code") for x in r] == [
        "visit_required",
        "done:attempt",
        "visit_required",
        "done:attempt",
        "done:resolve",
    ]


# --- one intent, one entry ----------------------------------------------------------------


def test_an_identical_attempt_within_ten_seconds_is_a_duplicate(field, auth, fake_clock):
    """Issue 10, finding 1: two taps 120-400 ms apart stored two attempts."""
    auth.login("mj1")
    first = entry("attempt", field.warning.id, channel="phone", reached=False)
    second = entry("attempt", field.warning.id, channel="phone", reached=False)
    [a, b] = send(auth, first, second)
    assert a["status"] == "applied" and b["status"] == "duplicate"
    assert b["attempt_id"] == a["attempt_id"] and b["detail"] == a["detail"]
    assert count(ContactAttempt) == 1
    [b_again] = send(auth, second)  # its replay tells the same
    assert b_again["status"] == "duplicate" and b_again["attempt_id"] == a["attempt_id"]
    # Another answer, another channel, or the same call again later: a new attempt.
    fake_clock.advance(3)
    r = send(
        auth,
        entry("attempt", field.warning.id, channel="phone", reached=True),
        entry("attempt", field.warning.id, channel="visit", reached=False),
    )
    assert [x["status"] for x in r] == ["applied", "applied"]
    fake_clock.advance(11)
    [later] = send(auth, entry("attempt", field.warning.id, channel="phone", reached=False))
    assert later["status"] == "applied" and count(ContactAttempt) == 4


def test_a_double_tap_on_the_form_path_records_once(field, auth, client):
    auth.login("mj1")
    for _ in range(2):  # two forms (two client ids), the same answer
        resp = post_form(
            auth, client, field.warning.id, kind="attempt", channel="phone", reached="no"
        )
        assert resp.status_code == 302
    assert count(ContactAttempt) == 1


def test_two_officers_calling_at_once_are_two_attempts(field, auth):
    helping.request_help(field.warning, field.officer)
    helping.join(field.warning, field.colleague)
    db.session.commit()
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=False
    )
    fieldwork.log_attempt(
        field.warning, field.colleague, client_id=cid(), channel="phone", reached=False
    )
    db.session.commit()
    assert count(ContactAttempt) == 2


# --- no entry can fail the batch ----------------------------------------------------------


def test_an_unexpected_error_in_one_entry_is_that_entrys_result(field, auth, monkeypatch):
    def broken(*_args, **_kw):
        raise KeyError("already_theirs")

    monkeypatch.setattr(helping, "request_help", broken)
    auth.login("mj1")
    r = send(
        auth,
        entry("attempt", field.warning.id, channel="phone", reached=True),
        entry("help", field.warning.id),
        entry("attempt", field.warning.id, channel="visit", reached=True),
    )
    assert [x["status"] for x in r] == ["applied", "rejected", "applied"]
    assert r[1]["code"] == "error" and r[1]["retry"] is False and r[1]["detail"]
    assert count(ContactAttempt) == 2 and count(ClientMutation) == 2


def test_a_database_failure_in_one_entry_asks_for_a_resend(field, auth, monkeypatch):
    real = fieldwork.log_attempt
    calls = []

    def flaky(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE warnings", {}, Exception("deadlock detected"))
        return real(*args, **kw)

    monkeypatch.setattr(fieldwork, "log_attempt", flaky)
    auth.login("mj1")
    first = entry("attempt", field.warning.id, channel="phone", reached=True)
    r = send(auth, first, entry("attempt", field.warning.id, channel="visit", reached=True))
    assert [x["status"] for x in r] == ["rejected", "applied"]
    assert r[0]["code"] == "busy" and r[0]["retry"] is True
    [again] = send(auth, first)  # not remembered: the resend applies
    assert again["status"] == "applied"


@pytest.mark.parametrize("code", ["already_theirs", "a_code_added_later"])
def test_every_dispatch_code_has_a_status_and_words(field, auth, monkeypatch, code):
    """Finding 8 / issue 13: `_DISPATCH[code][0]` raised KeyError for already_theirs."""

    def refuse(*_args, **_kw):
        raise refusals.Refusal(code)

    monkeypatch.setattr(dispatch, "decline", refuse)
    auth.login("mj1")
    [r] = send(auth, entry("decline", field.warning.id))
    assert r["status"] in ("conflict", "rejected") and r["code"] == code and r["detail"]
    assert sync.message_for(code) == r["detail"]


# --- what the officer's timeline can show -------------------------------------------------


def test_the_officers_timeline_has_reached_and_notes_like_the_chiefs(field):
    """Issue 10, finding 8: the officer's timeline left out reached / not reached and notes."""
    fieldwork.log_attempt(
        field.warning,
        field.officer,
        client_id=cid(),
        channel="phone",
        reached=False,
        note="无人接听",
    )
    reached = fieldwork.log_attempt(
        field.warning,
        field.officer,
        client_id=cid(),
        channel="visit",
        reached=True,
        note="在家中见到本人",
    )
    helping.request_help(field.warning, field.officer)
    helping.join(field.warning, field.colleague)
    fieldwork.confirm_attempt(reached, field.colleague, client_id=cid(), note="我也在场")
    fieldwork.resolve(
        field.warning,
        field.officer,
        client_id=cid(),
        outcome="persuaded",
        note="已安装国家反诈中心APP",
    )
    db.session.commit()
    items = [i for i in fieldread.timeline(field.warning) if i["kind"] != "received"]
    attempts = [i for i in items if i["kind"] == "attempt"]
    assert [(i["reached"], i["note"]) for i in attempts] == [
        (False, "无人接听"),
        (True, "在家中见到本人"),
    ]
    assert "未联系上" in attempts[0]["text"] and "联系上" in attempts[1]["text"]
    assert [i["note"] for i in items if i["kind"] == "confirmed"] == ["我也在场"]
    assert [i["note"] for i in items if i["kind"] == "resolved"] == ["已安装国家反诈中心APP"]
    assert all(i["who"] for i in items if i["kind"] in ("attempt", "resolved"))
    assert count(Participant) == 1
