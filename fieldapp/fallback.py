"""The SMS fallback: when a push cannot arrive, or no receipt says it did.

Every offer queues one `receipt_check` (`schedule`): due the station's `receipt_timeout_s`
after the offer when the officer has a device to push to (no receipt by then → SMS), and due
at once when they have none (no receipt can ever come, so the SMS goes as the offer is made;
express.py sends it right after the response). A test alert queues one too. One row per
offer, so the lease of that row is what keeps the SMS from going twice; `offer.fallback_at`
records it. The text is the push title and body (fraud type, risk, distance): never a name or
a phone number.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import force_locale

from fieldapp import events, i18n, outbox, push, receipts, sms
from fieldapp.extensions import db
from fieldapp.models import Offer, OutboxMessage, PushSubscription, Station, User, Warning


def sms_text(user: User, warning: Warning | None, offer: Offer | None, test: bool) -> str:
    """The SMS, in the user's language: the push's title and body."""
    with force_locale(i18n.locale(user.locale or push.DEFAULT_LOCALE)):
        title, body = push.texts("offer", warning, offer, test=test)
    return f"{title} {body}".strip()


def _send_offer_sms(offer: Offer, now: datetime) -> str:
    """SMS the offer to its officer unless answered, delivered or already sent; says which."""
    if offer.status != "pending":
        return "answered"
    if offer.delivered_at is not None:
        return "delivered"
    if offer.fallback_at is not None:
        return "already_sent"
    officer = offer.officer
    if not officer.phone:
        events.record(
            "fallback_unavailable",
            warning=offer.warning,
            offer_id=offer.id,
            officer_id=officer.id,
            channel="sms",
        )
        return "no_phone"
    sms.send(officer.phone, sms_text(officer, offer.warning, offer, False), ref=f"o{offer.id}")
    db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer.id, Offer.fallback_at.is_(None))
        .values(fallback_at=now)
        .execution_options(synchronize_session=False)
    )
    events.record(
        "fallback_sms",
        warning=offer.warning,
        offer_id=offer.id,
        officer_id=officer.id,
        channel="sms",
    )
    return "sent"


def schedule(offer: Offer, station: Station, now: datetime) -> OutboxMessage:
    """Queue the offer's receipt check: at once when its officer has no device to push to."""
    with db.session.no_autoflush:  # the offer's other rows still go in one INSERT
        has_device = db.session.scalar(_HAS_DEVICE, {"user_id": offer.officer_id})
    wait_s = station.receipt_timeout_s if has_device else 0
    return outbox.enqueue(
        "receipt_check", {"offer_id": offer.id}, due_at=now + timedelta(seconds=wait_s)
    )


# Built once, with bound parameters: it sits between a new warning and its push.
_HAS_DEVICE = sa.select(sa.exists().where(PushSubscription.user_id == sa.bindparam("user_id")))


def handle_receipt_check(message: OutboxMessage, now: datetime) -> dict | None:
    """Outbox kind "receipt_check": no delivery receipt in time, so send the SMS as well."""
    data = message.payload
    if data.get("offer_id"):
        offer = db.session.get(Offer, data["offer_id"])
        if offer is None:
            return {"skipped": "answered"}
        status = _send_offer_sms(offer, now)
        return {"sent": True} if status == "sent" else {"skipped": status}
    pushed = db.session.get(OutboxMessage, data.get("push_outbox_id"))
    user = db.session.get(User, data.get("user_id"))
    if pushed is None or user is None:
        return {"skipped": "delivered"}
    if receipts.test_delivered(pushed, user.id):
        return {"skipped": "delivered"}
    if not user.phone:
        return {"skipped": "no_phone"}
    sms.send(user.phone, sms_text(user, None, None, True), ref=f"t{pushed.id}")
    events.record(
        "fallback_sms", station_id=user.station_id, officer_id=user.id, channel="sms", test=True
    )
    return {"sent": True}
