"""Amending a closed warning's outcome: the person was defrauded after the warning after all."""

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from fieldapp import events, outbox, warning_lock
from fieldapp.extensions import db
from fieldapp.models import IntakeToken, Outcome, User, Warning
from fieldapp.refusals import Refusal


def amend_outcome(
    warning: Warning,
    chief: User,
    now: datetime,
    *,
    defrauded_after: bool,
    later_loss_amount: Decimal | None,
) -> Outcome:
    """Record that the person was (or was not) defrauded after the warning (预警后被骗).

    Writes the event and, when the warning came from a centre with a webhook, queues the
    "amended" webhook in the same transaction.
    """
    if later_loss_amount is not None and later_loss_amount < 0:
        raise Refusal("loss_invalid")
    # Two chiefs amending at once queue on the warning's row: the outcome ends as the last
    # amendment's event says, never one event's values over the other's row.
    warning_lock.lock(warning, None)
    outcome = db.session.scalar(
        sa.select(Outcome)
        .where(Outcome.warning_id == warning.id)
        .execution_options(populate_existing=True)
    )
    if outcome is None:
        raise Refusal("no_outcome")
    outcome.defrauded_after = defrauded_after
    outcome.later_loss_amount = later_loss_amount if defrauded_after else None
    outcome.amended_at = now
    outcome.amended_by_id = chief.id
    warning.last_action_at = now
    events.record(
        "outcome_amended",
        warning=warning,
        actor=chief,
        defrauded_after=defrauded_after,
        later_loss_amount=float(outcome.later_loss_amount)
        if outcome.later_loss_amount is not None
        else None,
    )
    if warning.token_id is not None:
        token = db.session.get(IntakeToken, warning.token_id)
        if token is not None and token.webhook_url:
            outbox.enqueue("webhook", {"warning_id": warning.id, "event": "amended"})
    return outcome
