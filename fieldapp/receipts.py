"""Delivery receipts: the service worker says a push arrived.

Message ids are `m<outbox id>`; the payload carries a signed `receipt_token` (push.py) so the
service worker can post its receipt without the page's CSRF token. A receipt for an offer sets
`offer.delivered_at` (which stops its SMS fallback); a receipt for a test alert is an event,
which the test alert's receipt check looks for.
"""

from datetime import datetime

import sqlalchemy as sa

from fieldapp import events
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage, User
from fieldapp.validation import parse_id


def message_id_of(message: OutboxMessage) -> str:
    """The stable id a push carries and its receipt names: one per outbox row."""
    return message.payload.get("message_id") or f"m{message.id}"


def outbox_id_of(message_id: str) -> int | None:
    """The outbox id in "m<id>", or None (past the INTEGER range too: no such row)."""
    return parse_id(message_id[1:]) if message_id.startswith("m") else None


def test_delivered(pushed: OutboxMessage, user_id: int) -> bool:
    """True when a receipt came back for the test alert sent as `pushed`."""
    message_id = message_id_of(pushed)
    receipts = db.session.scalars(
        sa.select(Event.data).where(
            Event.kind == "delivered",
            Event.actor_id == user_id,
            Event.created_at >= pushed.created_at,
        )
    )
    return any(data.get("message_id") == message_id for data in receipts)


def record_receipt(message_id: str, user_id: int, now: datetime) -> bool:
    """Mark the message `message_id` (sent to `user_id`) delivered; False if it is not theirs."""
    outbox_id = outbox_id_of(message_id)
    message = db.session.get(OutboxMessage, outbox_id) if outbox_id is not None else None
    if message is None or message.kind != "push" or message.payload.get("user_id") != user_id:
        return False
    offer_id = message.payload.get("offer_id")
    if offer_id:
        done = db.session.execute(
            sa.update(Offer)
            .where(Offer.id == offer_id, Offer.officer_id == user_id, Offer.delivered_at.is_(None))
            .values(delivered_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done:
            offer = db.session.get(Offer, offer_id)
            events.record(
                "delivered",
                warning=offer.warning,
                offer_id=offer_id,
                officer_id=user_id,
                channel="push",
            )
        return True
    # Not written into the outbox row: its sender may still be finishing it and would
    # overwrite the payload. The event is what the test alert's receipt check looks for.
    if not test_delivered(message, user_id):
        events.record(
            "delivered", actor=db.session.get(User, user_id), message_id=message_id, channel="push"
        )
    return True
