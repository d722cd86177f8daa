"""Hand-made data for the figures and board tests: every number is chosen to be added by hand."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Offer, Outcome

_seq = count(1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def warning(
    make,
    station,
    received,
    *,
    owner=None,
    accept_s=None,
    contact_s=None,
    outcome=None,
    attempts=(),
    offers=(),
    amount=None,
    loss=None,
    app=False,
    defrauded_after=False,
    later_loss=None,
    status=None,
    fraud_type="online_shopping_refund",
    token_id=None,
):
    """A warning with its attempts [(channel, reached)], offers [(officer, status)], outcome."""
    w = make.warning(
        station,
        received_at=received,
        last_action_at=received,
        owner_id=owner.id if owner else None,
        accepted_at=received + timedelta(seconds=accept_s) if accept_s is not None else None,
        first_contact_at=received + timedelta(seconds=contact_s) if contact_s is not None else None,
        amount_at_risk=Decimal(amount) if amount is not None else None,
        status=status or ("resolved" if outcome else "accepted"),
        fraud_type=fraud_type,
        token_id=token_id,
    )
    for n, (officer, offer_status) in enumerate(offers, 1):
        db.session.add(
            Offer(
                warning_id=w.id,
                officer_id=officer.id,
                rank=n,
                status=offer_status,
                created_at=received,
            )
        )
    t = received + timedelta(seconds=contact_s or 60)
    for channel, reached in attempts:
        db.session.add(
            ContactAttempt(
                client_id=f"c-{next(_seq)}",
                warning_id=w.id,
                user_id=(owner.id if owner else None),
                channel=channel,
                reached=reached,
                attempted_at=t,
            )
        )
        t += timedelta(seconds=30)
    if outcome:
        db.session.add(
            Outcome(
                warning_id=w.id,
                outcome=outcome,
                loss_amount=Decimal(loss) if loss is not None else None,
                app_installed=app,
                recorded_by_id=owner.id,
                recorded_at=t,
                defrauded_after=defrauded_after,
                later_loss_amount=Decimal(later_loss) if later_loss is not None else None,
            )
        )
        w.resolved_at = t
    db.session.flush()
    return w
