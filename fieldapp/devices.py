"""An officer's devices: which push endpoints an account may register, and the test alert.

Rules:
- an endpoint must pass the outbound rule for push services (outbound_rule.push_rule): the
  server POSTs to it, so it is vetted like any outbound URL;
- an endpoint belongs to one account: registered by another, it is refused (whoever knows
  someone's endpoint must not be able to take their alerts); the owner may register it again;
- an account keeps at most PUSH_MAX_SUBSCRIPTIONS devices: a new one beyond that replaces the
  device that has gone longest without a push arriving (each push goes to every device, so
  the count bounds what one account can make the server send; replacing rather than refusing
  never locks an officer out of alerts on the phone in their hand);
- a test alert pushes to every device of the account, and the SMS follows when no receipt
  comes back within the station's `receipt_timeout_s` (its rate limit sits on the view).
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from fieldapp import events, outbound_rule, outbox
from fieldapp.extensions import db
from fieldapp.models import PushSubscription, User
from fieldapp.refusals import Refusal


def register_subscription(
    user: User, endpoint: str, p256dh: str, auth: str, user_agent: str | None, now: datetime
) -> PushSubscription:
    """Store `user`'s subscription (or refresh it); refusals.Refusal when the rules say no."""
    try:
        outbound_rule.vet(endpoint, outbound_rule.push_rule())
    except outbound_rule.Refused as exc:
        code = {"scheme": "endpoint_scheme", "host": "endpoint_host"}.get(exc.reason)
        raise Refusal(code or "endpoint_refused") from exc
    same_endpoint = sa.select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    sub = db.session.scalar(same_endpoint)
    if sub is not None and sub.user_id != user.id:
        raise Refusal("endpoint_other_account")
    if sub is None:
        _make_room(user, now)
        sub = PushSubscription(endpoint=endpoint, user_id=user.id, created_at=now)
        db.session.add(sub)
    sub.p256dh, sub.auth = p256dh, auth
    sub.user_agent = (user_agent or "")[:300] or None
    sub.failure_count = 0
    db.session.flush()
    events.record("push_subscribed", actor=user, subscription_id=sub.id)
    return sub


def _make_room(user: User, now: datetime) -> None:
    """Drop the user's stalest devices so one more keeps them within the maximum."""
    keep = max(1, int(current_app.config.get("PUSH_MAX_SUBSCRIPTIONS", 10))) - 1
    stalest_first = (
        sa.select(PushSubscription)
        .where(PushSubscription.user_id == user.id)
        .order_by(
            sa.func.coalesce(PushSubscription.last_success_at, PushSubscription.created_at),
            PushSubscription.id,
        )
    )
    subs = list(db.session.scalars(stalest_first))
    for old in subs[: max(0, len(subs) - keep)]:
        events.record("push_subscription_replaced", actor=user, subscription_id=old.id)
        db.session.delete(old)


def remove_subscription(user: User, endpoint: str) -> bool:
    """Forget one of `user`'s subscriptions; False when they have none at `endpoint`."""
    sub = db.session.scalar(
        sa.select(PushSubscription).where(
            PushSubscription.endpoint == endpoint, PushSubscription.user_id == user.id
        )
    )
    if sub is None:
        return False
    events.record("push_unsubscribed", actor=user, subscription_id=sub.id)
    db.session.delete(sub)
    return True


def send_test_alert(user: User, now: datetime) -> tuple[str, int]:
    """Queue a test push to every device of `user`, and its SMS check; (message_id, wait_s)."""
    message = outbox.enqueue("push", {"user_id": user.id, "push_kind": "reminder", "test": True})
    db.session.flush()
    wait_s = user.station.receipt_timeout_s
    outbox.enqueue(
        "receipt_check",
        {"push_outbox_id": message.id, "user_id": user.id},
        due_at=now + timedelta(seconds=wait_s),
    )
    message_id = f"m{message.id}"
    events.record("test_alert", actor=user, message_id=message_id)
    return message_id, wait_s
