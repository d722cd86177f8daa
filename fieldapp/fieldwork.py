"""The officer's work on a warning: attempts, confirmations, outcomes, follow-ups.

Plain functions over the session: they add rows, events and outbox messages and never commit,
so a change and everything it causes commit together. Each starts with `warning_lock.lock`
(a compare-and-set on the warning's status that holds its row until commit) and checks its
rules after it, so what it checks is what it writes over. A change that cannot apply raises
refusals.Refusal; its `kind` says whether the device sees it as a conflict (the world moved on:
reassigned, already resolved) or as rejected (the entry itself is wrong).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from fieldapp import clock, dispatch, events, outbox
from fieldapp.access import can_see_station
from fieldapp.extensions import db
from fieldapp.models import (
    CHANNELS,
    OPEN_STATUSES,
    OUTCOMES,
    Confirmation,
    ContactAttempt,
    Offer,
    Outcome,
    Participant,
    User,
    Warning,
)
from fieldapp.refusals import Duplicate, Refusal
from fieldapp.warning_lock import lock

# The same attempt (officer, warning, channel, reached) again this soon is a second tap.
DUPLICATE_WINDOW = timedelta(seconds=10)
# A follow-up (回访) further out than this is a typo.
FOLLOW_UP_MAX = timedelta(days=366)

# --- who may see and do what -------------------------------------------------------------


def can_view(warning: Warning | None, user: User) -> bool:
    """Owner, participants, officers with an offer, colleagues and chiefs of the station, admin.

    Every one of those is of the warning's station (or an admin), so the station decides;
    another station's warning is invisible (404, never 403).
    """
    return warning is not None and can_see_station(warning.station_id, user)


def is_participant(warning: Warning, user: User) -> bool:
    """True when `user` joined `warning` to help."""
    return bool(
        db.session.scalar(
            sa.select(Participant.id).where(
                Participant.warning_id == warning.id, Participant.user_id == user.id
            )
        )
    )


def works_on(warning: Warning, user: User) -> bool:
    """The owner and colleagues who joined: they log attempts and may ask for help."""
    return warning.owner_id == user.id or is_participant(warning, user)


def may_resolve(warning: Warning, user: User) -> bool:
    """The owner of an open warning closes it, or a chief of its station; participants do not."""
    if not warning.is_open:
        return False
    return warning.owner_id == user.id or (user.is_chief and can_view(warning, user))


def require_worker(warning: Warning, user: User) -> None:
    """Raise unless `warning` is open and `user` owns it or joined it."""
    if not warning.is_open:
        raise Refusal("resolved")
    if works_on(warning, user):
        return
    raise Refusal("reassigned" if dispatch.had_offer(warning, user) else "not_allowed")


# --- times from devices ------------------------------------------------------------------


def clock_skew() -> timedelta:
    """How far a phone's clock may be off the server's (setting DEVICE_CLOCK_SKEW_S)."""
    return timedelta(seconds=current_app.config.get("DEVICE_CLOCK_SKEW_S", 120))


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a time whose UTC lies outside the calendar (year 1 at +05:00, year 9999
    at -05:00) becomes the first or last representable time, which every bound refuses."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year < 5000 else datetime.max
        return edge.replace(tzinfo=UTC)


def device_time(value: datetime, warning: Warning, now: datetime) -> datetime:
    """A time a phone gave for work on `warning`, within the warning's life.

    Up to the clock skew before its receipt or after now is a phone clock slightly off: that
    time is pulled to the receipt or to now. Further out, the entry is refused.
    """
    at, skew = as_utc(value), clock_skew()
    if at > now + skew:
        raise Refusal("future_time")
    if at < warning.received_at - skew:
        raise Refusal("time_before_warning")
    return min(max(at, warning.received_at), now)


# --- changes -----------------------------------------------------------------------------


def log_attempt(
    warning: Warning,
    user: User,
    *,
    client_id: str,
    channel: str,
    reached: bool | None,
    attempted_at: datetime | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> ContactAttempt:
    """Record one attempt to reach the person; the first one puts the warning in contact.

    Raises Duplicate when the same attempt was recorded in the last few seconds.
    """
    now = now or clock.now()
    if channel not in CHANNELS:
        raise ValueError(channel)
    if reached is None:  # never defaulted: "reached" feeds the station's contact rate
        raise Refusal("reached_required")
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("resolved")
    require_worker(warning, user)
    attempted_at = device_time(attempted_at or now, warning, now)
    same = db.session.scalar(
        sa.select(ContactAttempt)
        .where(
            ContactAttempt.warning_id == warning.id,
            ContactAttempt.user_id == user.id,
            ContactAttempt.channel == channel,
            ContactAttempt.reached.is_(reached),
            ContactAttempt.created_at > now - DUPLICATE_WINDOW,
            ContactAttempt.attempted_at.between(
                attempted_at - DUPLICATE_WINDOW, attempted_at + DUPLICATE_WINDOW
            ),
        )
        .order_by(ContactAttempt.id.desc())
        .limit(1)
    )
    if same is not None:
        raise Duplicate(same)
    attempt = ContactAttempt(
        client_id=client_id,
        warning_id=warning.id,
        user_id=user.id,
        channel=channel,
        reached=reached,
        attempted_at=attempted_at,
        note=note or None,
        created_at=now,
    )
    db.session.add(attempt)
    if warning.status == "accepted":
        warning.status = "in_contact"
    # The earliest attempt, even one sent late from a phone that was offline.
    if warning.first_contact_at is None or attempted_at < warning.first_contact_at:
        warning.first_contact_at = attempted_at
    warning.last_action_at = now
    db.session.flush()
    events.record(
        "attempt",
        warning=warning,
        actor=user,
        attempt_id=attempt.id,
        channel=channel,
        reached=reached,
    )
    return attempt


def confirm_attempt(
    attempt: ContactAttempt,
    user: User,
    *,
    client_id: str,
    note: str | None = None,
    now: datetime | None = None,
) -> Confirmation:
    """A colleague of the same station vouches that a contact really happened."""
    now = now or clock.now()
    warning = attempt.warning
    if not can_view(warning, user) or user.role not in ("officer", "auxiliary", "admin"):
        raise Refusal("attempt_not_found")
    if attempt.user_id == user.id:
        raise Refusal("own_attempt")
    lock(warning, None)  # open or closed: a contact may be vouched for after the outcome
    already = db.session.scalar(
        sa.select(Confirmation.id).where(
            Confirmation.attempt_id == attempt.id, Confirmation.user_id == user.id
        )
    )
    if already:
        raise Refusal("already_confirmed")
    confirmation = Confirmation(
        client_id=client_id, attempt_id=attempt.id, user_id=user.id, note=note, confirmed_at=now
    )
    db.session.add(confirmation)
    db.session.flush()
    events.record(
        "confirmed",
        warning=warning,
        actor=user,
        attempt_id=attempt.id,
        confirmation_id=confirmation.id,
    )
    return confirmation


def visit_required(warning: Warning) -> bool:
    """True when this warning may close as persuaded only after a reached visit (见面劝阻)."""
    return bool(warning.station.require_visit_for_high_risk and warning.risk_level == "high")


def has_reached_visit(warning: Warning) -> bool:
    """True when a visit reached the person."""
    return _reached(warning, "visit")


def has_reached_contact(warning: Warning) -> bool:
    """True when any attempt of the station reached the person."""
    return _reached(warning, None)


def _reached(warning: Warning, channel: str | None) -> bool:
    query = sa.select(ContactAttempt.id).where(
        ContactAttempt.warning_id == warning.id, ContactAttempt.reached.is_(True)
    )
    if channel is not None:
        query = query.where(ContactAttempt.channel == channel)
    return db.session.scalar(query.limit(1)) is not None


def _check_resolver(warning: Warning, user: User) -> None:
    if may_resolve(warning, user):
        return
    if is_participant(warning, user):
        raise Refusal("not_owner")
    raise Refusal("reassigned" if dispatch.had_offer(warning, user) else "not_allowed")


def resolve(
    warning: Warning,
    user: User,
    *,
    client_id: str,
    outcome: str,
    loss_amount: Decimal | None = None,
    app_installed: bool = False,
    note: str | None = None,
    follow_up_at: datetime | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Close the warning with its outcome; may schedule a follow-up (回访) reminder."""
    now = now or clock.now()
    if outcome not in OUTCOMES:
        raise ValueError(outcome)
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("resolved")
    _check_resolver(warning, user)
    if outcome == "already_lost" and (loss_amount is None or loss_amount <= 0):
        raise Refusal("loss_required")
    if outcome == "persuaded":
        if visit_required(warning) and not has_reached_visit(warning):
            raise Refusal("visit_required")
        if not has_reached_contact(warning):
            raise Refusal("contact_required")
    if follow_up_at is not None:
        follow_up_at = as_utc(follow_up_at)
        if follow_up_at <= now:
            raise Refusal("follow_up_past")
        if follow_up_at > now + FOLLOW_UP_MAX:
            raise Refusal("follow_up_too_far")
    warning.status, warning.resolved_at, warning.last_action_at = "resolved", now, now
    db.session.execute(
        sa.update(Offer)
        .where(Offer.warning_id == warning.id, Offer.status == "pending")
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    dispatch.close_help_requests(warning, now)
    row = Outcome(
        warning_id=warning.id,
        client_id=client_id,
        outcome=outcome,
        loss_amount=loss_amount if outcome == "already_lost" else None,
        app_installed=app_installed,
        note=note or None,
        recorded_by_id=user.id,
        recorded_at=now,
        follow_up_at=follow_up_at,
    )
    db.session.add(row)
    db.session.flush()
    events.record(
        "resolved",
        warning=warning,
        actor=user,
        outcome=outcome,
        app_installed=app_installed,
        loss_amount=float(row.loss_amount) if row.loss_amount is not None else None,
        follow_up=follow_up_at is not None,
    )
    if follow_up_at is not None:
        outbox.enqueue(
            "push",
            {"user_id": user.id, "push_kind": "reminder", "warning_id": warning.id},
            due_at=follow_up_at,
        )
    if warning.token is not None and warning.token.webhook_url:
        outbox.enqueue("webhook", {"warning_id": warning.id, "event": "resolved"})
    return row


def complete_follow_up(warning: Warning, user: User, now: datetime | None = None) -> Outcome:
    """The follow-up call or visit was made; it leaves the officer's list."""
    now = now or clock.now()
    row = warning.outcome
    if row is None or row.follow_up_at is None:
        raise Refusal("no_follow_up")
    if not (works_on(warning, user) or row.recorded_by_id == user.id):
        raise Refusal("not_allowed")
    # A compare-and-set: two taps (or two phones) mark it done once.
    done = db.session.execute(
        sa.update(Outcome)
        .where(Outcome.id == row.id, Outcome.follow_up_done_at.is_(None))
        .values(follow_up_done_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise Refusal("no_follow_up")
    db.session.refresh(row)
    events.record("follow_up_done", warning=warning, actor=user)
    return row
