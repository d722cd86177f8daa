"""Times from phones stay within the warning's life (issue 14, finding 5), and extreme ones are
refused per entry, never a 500 (finding 8)."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fieldapp import fieldwork, refusals
from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Outcome, Warning
from tests.fieldsetup import cid


def send(auth, *entries):
    resp = auth.post_json("/api/v1/sync", {"entries": list(entries)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["results"]


def attempt(warning_id, at=None, recorded_at=None, **data):
    body = {"channel": "phone", "reached": True, **data}
    if at is not None:
        body["attempted_at"] = at
    raw = {"client_id": cid(), "kind": "attempt", "warning_id": warning_id, "data": body}
    if recorded_at is not None:
        raw["recorded_at"] = recorded_at
    return raw


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_backdated_attempt_is_refused_and_first_contact_never_precedes_receipt(field, auth):
    """An attempt dated 1999 set first_contact_at to 1998 and the board showed it on time."""
    auth.login("mj1")
    [r, ancient] = send(
        auth,
        attempt(field.warning.id, "2026-03-01T10:00:00+08:00"),
        attempt(field.warning.id, "1999-03-01T10:00:00+08:00"),
    )
    assert r["status"] == "rejected" and r["code"] == "time_before_warning"
    assert r["errors"] == {"data.attempted_at": r["detail"]} and "手机" in r["detail"]
    # A year no device can mean is refused by the input check already.
    assert ancient["status"] == "rejected" and "data.attempted_at" in ancient["errors"]
    w = db.session.get(Warning, field.warning.id)
    assert w.first_contact_at is None and w.status == "accepted" and count(ContactAttempt) == 0


def test_backdating_is_refused_on_the_form_path_at_the_field(field, auth, client):
    auth.login("mj1")
    token = auth.csrf(f"/field/w/{field.warning.id}")
    form = {
        "csrf_token": token,
        "client_id": cid(),
        "kind": "attempt",
        "channel": "visit",
        "reached": "yes",
        "attempted_at": "2026-11-24T09:00",  # yesterday, long before the warning
    }
    resp = client.post(f"/field/w/{field.warning.id}/entry", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="attempt-attempted_at-error"' in html
    assert 'value="2026-11-24T09:00"' in html and 'value="yes" checked' in html
    assert count(ContactAttempt) == 0


def test_a_phone_clock_slightly_off_is_pulled_inside_the_warnings_life(field, fake_clock):
    w, now = field.warning, fake_clock.now()
    early = fieldwork.log_attempt(
        w,
        field.officer,
        client_id=cid(),
        channel="phone",
        reached=False,
        attempted_at=w.received_at - timedelta(seconds=90),
    )
    ahead = fieldwork.log_attempt(
        w,
        field.officer,
        client_id=cid(),
        channel="visit",
        reached=True,
        attempted_at=now + timedelta(seconds=90),
    )
    db.session.commit()
    assert early.attempted_at == w.received_at == w.first_contact_at
    assert ahead.attempted_at == now


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-121, "time_before_warning"), (121, "future_time")],
)
def test_beyond_the_clock_skew_setting_is_refused(field, fake_clock, app, offset, code):
    w = field.warning
    base = w.received_at if offset < 0 else fake_clock.now()
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.log_attempt(
            w,
            field.officer,
            client_id=cid(),
            channel="phone",
            reached=True,
            attempted_at=base + timedelta(seconds=offset),
        )
    db.session.rollback()
    assert exc.value.code == code
    app.config["DEVICE_CLOCK_SKEW_S"] = 300  # the skew is a setting
    fieldwork.log_attempt(
        w,
        field.officer,
        client_id=cid(),
        channel="phone",
        reached=True,
        attempted_at=base + timedelta(seconds=offset),
    )


def test_an_offline_attempt_sent_late_moves_first_contact_earlier(field, fake_clock, auth):
    w = field.warning
    auth.login("mj1")
    [now_entry] = send(auth, attempt(w.id, reached=False))
    made_offline = (w.received_at + timedelta(minutes=2)).isoformat()
    [late] = send(auth, attempt(w.id, recorded_at=made_offline, channel="visit"))
    assert now_entry["status"] == late["status"] == "applied"
    w = db.session.get(Warning, w.id)
    assert w.first_contact_at == field.warning.received_at + timedelta(minutes=2)


def test_a_wrong_recorded_at_is_refused_too(field, auth):
    auth.login("mj1")
    [r] = send(auth, attempt(field.warning.id, recorded_at="2030-01-01T00:00:00+08:00"))
    assert r["status"] == "rejected" and r["code"] == "future_time"


def test_extreme_times_are_one_entrys_refusal_never_a_500(field, auth):
    """Year 1 in attempted_at made a 500 that left the batch half applied (queue.js then sent
    it for ever); a follow-up in year 9999 at -05:00 too."""
    auth.login("mj1")
    results = send(
        auth,
        attempt(field.warning.id),
        attempt(field.warning.id, "0001-01-01T00:00:00+05:00", channel="visit"),
        attempt(field.warning.id, "9999-12-31T23:59:59-05:00", channel="visit"),
        attempt(field.warning.id, recorded_at="0001-01-01T00:30:00+14:00", channel="other"),
        {
            "client_id": cid(),
            "kind": "resolve",
            "warning_id": field.warning.id,
            "data": {"outcome": "not_fraud", "follow_up_at": "9999-12-31T23:00:00-05:00"},
        },
        attempt(field.warning.id, channel="wechat_video"),
    )
    assert [r["status"] for r in results] == [
        "applied",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "applied",
    ]
    fields = ["data.attempted_at", "data.attempted_at", "recorded_at", "data.follow_up_at"]
    for result, field_name in zip(results[1:5], fields, strict=True):
        assert field_name in result["errors"], result
    assert count(ContactAttempt) == 2 and count(Outcome) == 0


def test_the_rules_themselves_survive_times_outside_the_calendar(field):
    """Whatever the caller checked, a UTC beyond year 1 or 9999 is a refusal, not an error."""
    plus5, minus5 = timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))
    for when, code in (
        (datetime(1, 1, 1, tzinfo=plus5), "time_before_warning"),
        (datetime(9999, 12, 31, 23, tzinfo=minus5), "future_time"),
    ):
        with pytest.raises(refusals.Refusal) as exc:
            fieldwork.log_attempt(
                field.warning,
                field.officer,
                client_id=cid(),
                channel="phone",
                reached=True,
                attempted_at=when,
            )
        db.session.rollback()
        assert exc.value.code == code
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.resolve(
            field.warning,
            field.officer,
            client_id=cid(),
            outcome="not_fraud",
            follow_up_at=datetime(9999, 12, 31, 23, tzinfo=minus5),
        )
    assert exc.value.code == "follow_up_too_far"


def test_a_follow_up_must_lie_within_a_year(field, fake_clock):
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.resolve(
            field.warning,
            field.officer,
            client_id=cid(),
            outcome="not_fraud",
            follow_up_at=fake_clock.now() + timedelta(days=400),
        )
    assert exc.value.code == "follow_up_too_far"
