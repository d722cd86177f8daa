"""The officer's work on a warning: attempts, confirmations, outcomes, help, joining."""

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from fieldapp import fieldread, fieldwork, helping, refusals
from fieldapp.extensions import db
from fieldapp.models import Event, OutboxMessage, Participant, TalkingPoints
from tests.fieldsetup import cid


def _kinds(warning_id):
    return [e.kind for e in fieldwork.events.timeline(warning_id)]


def _pushes(kind):
    rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "push"))
    return [r for r in rows if r.payload.get("push_kind") == kind]


def test_first_attempt_puts_the_warning_in_contact(field, fake_clock):
    w = field.warning
    when = fake_clock.now() - timedelta(minutes=3)
    a = fieldwork.log_attempt(
        w, field.officer, client_id=cid(), channel="phone", reached=False, attempted_at=when
    )
    db.session.commit()
    assert w.status == "in_contact" and w.first_contact_at == when
    fake_clock.advance(60)
    fieldwork.log_attempt(w, field.officer, client_id=cid(), channel="wechat_video", reached=True)
    db.session.commit()
    assert w.first_contact_at == when  # the first attempt's time stays
    assert [x.channel for x in w.attempts] == ["phone", "wechat_video"]
    event = db.session.scalar(sa.select(Event).where(Event.kind == "attempt"))
    assert event.data == {"attempt_id": a.id, "channel": "phone", "reached": False}


def test_attempt_in_the_future_is_refused(field, fake_clock):
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.log_attempt(
            field.warning,
            field.officer,
            client_id=cid(),
            channel="phone",
            reached=True,
            attempted_at=fake_clock.now() + timedelta(hours=1),
        )
    assert exc.value.code == "future_time"


def test_only_owner_and_participants_log_attempts(field):
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.log_attempt(
            field.warning, field.colleague, client_id=cid(), channel="phone", reached=True
        )
    assert exc.value.code == "not_allowed"


def test_help_notifies_every_on_duty_colleague_who_can_then_join(field, make):
    field.station.auxiliaries_take_offers = True  # the auxiliary from the person's village
    make.user(field.station, "officer", "offduty")  # off duty: not asked
    notified = helping.request_help(field.warning, field.officer)
    db.session.commit()
    assert sorted(notified) == sorted([field.colleague.id, field.aux.id])
    assert sorted(p.payload["user_id"] for p in _pushes("help")) == sorted(notified)
    assert all(p.payload["warning_id"] == field.warning.id for p in _pushes("help"))
    helping.join(field.warning, field.aux)
    db.session.commit()
    assert db.session.scalar(sa.select(Participant.user_id)) == field.aux.id
    fieldwork.log_attempt(
        field.warning, field.aux, client_id=cid(), channel="wechat_video", reached=True
    )
    db.session.commit()
    assert [
        k for k in _kinds(field.warning.id) if k in ("help_requested", "joined", "attempt")
    ] == [
        "help_requested",
        "joined",
        "attempt",
    ]
    with pytest.raises(refusals.Refusal):
        helping.join(field.warning, field.stranger)


def test_confirmation_by_a_colleague_not_by_oneself(field):
    a = fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="visit", reached=True
    )
    db.session.commit()
    assert fieldread.awaiting_confirmation(field.aux) == [a]
    assert fieldread.awaiting_confirmation(field.officer) == []  # not their own
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.confirm_attempt(a, field.officer, client_id=cid())
    assert exc.value.code == "own_attempt"
    c = fieldwork.confirm_attempt(a, field.aux, client_id=cid())
    db.session.commit()
    assert c.user_id == field.aux.id
    assert fieldread.awaiting_confirmation(field.colleague) == []
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.confirm_attempt(a, field.stranger, client_id=cid())
    assert exc.value.code == "attempt_not_found"


def test_resolve_closes_with_outcome_and_event(field):
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=True
    )
    o = fieldwork.resolve(
        field.warning, field.officer, client_id=cid(), outcome="persuaded", app_installed=True
    )
    db.session.commit()
    assert field.warning.status == "resolved" and field.warning.resolved_at is not None
    assert o.app_installed is True and o.loss_amount is None
    ev = db.session.scalar(sa.select(Event).where(Event.kind == "resolved"))
    assert ev.data["outcome"] == "persuaded" and ev.data["app_installed"] is True
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.log_attempt(
            field.warning, field.officer, client_id=cid(), channel="phone", reached=True
        )
    assert exc.value.code == "resolved" and exc.value.kind == "conflict"


def test_already_lost_needs_a_loss_amount(field):
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.resolve(field.warning, field.officer, client_id=cid(), outcome="already_lost")
    assert exc.value.code == "loss_required"
    o = fieldwork.resolve(
        field.warning,
        field.officer,
        client_id=cid(),
        outcome="already_lost",
        loss_amount=Decimal("20000"),
    )
    assert o.loss_amount == Decimal("20000")


def test_visit_rule_for_high_risk(field):
    field.station.require_visit_for_high_risk = True
    db.session.commit()
    w = field.warning
    assert fieldwork.visit_required(w)
    fieldwork.log_attempt(w, field.officer, client_id=cid(), channel="phone", reached=True)
    fieldwork.log_attempt(w, field.officer, client_id=cid(), channel="visit", reached=False)
    with pytest.raises(refusals.Refusal) as exc:
        fieldwork.resolve(w, field.officer, client_id=cid(), outcome="persuaded")
    assert exc.value.code == "visit_required"
    # Other outcomes are not held up by the rule.
    fieldwork.log_attempt(w, field.officer, client_id=cid(), channel="visit", reached=True)
    fieldwork.resolve(w, field.officer, client_id=cid(), outcome="persuaded")
    db.session.commit()
    assert w.outcome.outcome == "persuaded"


def test_visit_rule_does_not_apply_to_medium_risk(field, make):
    field.station.require_visit_for_high_risk = True
    field.warning.risk_level = "medium"
    db.session.commit()
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=True
    )
    fieldwork.resolve(field.warning, field.officer, client_id=cid(), outcome="persuaded")
    db.session.commit()
    assert not fieldwork.visit_required(field.warning)
    assert field.warning.status == "resolved" and field.warning.outcome.outcome == "persuaded"


def test_follow_up_reminder_is_queued_and_listed(field, fake_clock):
    due = fake_clock.now() + timedelta(days=3)
    with pytest.raises(refusals.Refusal):
        fieldwork.resolve(
            field.warning,
            field.officer,
            client_id=cid(),
            outcome="not_fraud",
            follow_up_at=fake_clock.now() - timedelta(hours=1),
        )
    fieldwork.resolve(
        field.warning, field.officer, client_id=cid(), outcome="not_fraud", follow_up_at=due
    )
    db.session.commit()
    [reminder] = _pushes("reminder")
    assert reminder.due_at == due
    assert reminder.payload == {
        "user_id": field.officer.id,
        "push_kind": "reminder",
        "warning_id": field.warning.id,
    }
    assert [o.warning_id for o in fieldread.follow_ups(field.officer)] == [field.warning.id]
    fieldwork.complete_follow_up(field.warning, field.officer)
    db.session.commit()
    assert fieldread.follow_ups(field.officer) == []


def test_webhook_only_when_token_has_one(field, make):
    token, _plain = make.token(field.station, webhook_url="https://centre.example/hook")
    field.warning.token_id = token.id
    db.session.commit()
    fieldwork.resolve(field.warning, field.officer, client_id=cid(), outcome="not_fraud")
    db.session.commit()
    hooks = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "webhook")
    ).all()
    assert [h.payload for h in hooks] == [{"warning_id": field.warning.id, "event": "resolved"}]


def test_persuasion_aid(field, make, fake_clock):
    db.session.add(
        TalkingPoints(
            fraud_type="online_shopping_refund", text_zh="退款原路退回", text_en="Refunds go back"
        )
    )
    earlier = make.warning(field.station, received_at=fake_clock.now() - timedelta(days=20))
    make.warning(field.other_station, received_at=fake_clock.now() - timedelta(days=10))
    lost = make.warning(
        field.station,
        person_phone="13900000000",
        status="accepted",
        owner_id=field.colleague.id,
        received_at=fake_clock.now() - timedelta(days=30),
    )
    fieldwork.resolve(
        lost, field.colleague, client_id=cid(), outcome="already_lost", loss_amount=Decimal("20000")
    )
    db.session.commit()
    assert fieldread.talking_points("online_shopping_refund", "zh_CN") == "退款原路退回"
    assert fieldread.talking_points("online_shopping_refund", "en") == "Refunds go back"
    assert [w.id for w in fieldread.earlier_warnings(field.warning, field.officer)] == [earlier.id]
    near = fieldread.nearby_same_trick(field.warning)
    assert [(w.id, o.loss_amount) for w, o in near] == [(lost.id, Decimal("20000"))]


def test_my_list_is_most_urgent_first(field, make, fake_clock):
    low = make.warning(
        field.station,
        risk_level="low",
        status="accepted",
        owner_id=field.officer.id,
        received_at=fake_clock.now() - timedelta(hours=2),
    )
    ids = [w.id for w in fieldread.my_open_warnings(field.officer)]
    assert ids == [field.warning.id, low.id]
