"""On and off duty: going off duty hands pending offers back at once."""

from datetime import datetime

import sqlalchemy as sa

from fieldapp import clock, events
from fieldapp.dispatch import decline
from fieldapp.extensions import db
from fieldapp.models import Offer, User
from fieldapp.refusals import Refusal


def set_duty(user: User, status: str, now: datetime | None = None) -> list[Offer]:
    """Put `user` on or off duty; going off duty hands back their pending offers at once, so
    the next officer is asked now instead of after the timeout. Returns the offers handed back.
    """
    now = now or clock.now()
    # A compare-and-set, so a double tap (or two tabs) records one change.
    changed = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, User.duty_status != status)
        .values(duty_status=status, duty_changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(user)
    if changed != 1:
        return []
    events.record("duty_changed", actor=user, status=status)
    handed_back: list[Offer] = []
    if status != "off_duty":
        return handed_back
    # In warning order, so two officers going off duty never wait for each other's locks.
    pending = db.session.scalars(
        sa.select(Offer)
        .where(Offer.officer_id == user.id, Offer.status == "pending")
        .order_by(Offer.warning_id)
    ).all()
    for offer in pending:
        try:
            with db.session.begin_nested():  # a refused decline leaves nothing behind
                handed_back.append(decline(offer.warning, user, now))
        except Refusal:  # answered meanwhile
            continue
    return handed_back
