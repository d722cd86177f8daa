"""The officer's work on a warning: attempts, confirmations, outcomes, help, follow-ups.

Plain functions over the session: they add rows, events and outbox messages and never commit,
so a change and everything it causes commit together. A change that cannot apply raises
FieldError; its `kind` says whether the device sees it as a conflict (the world moved on:
reassigned, already resolved) or as rejected (the entry itself is wrong).
"""

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from fieldapp import clock, events, geo, outbox
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
    TalkingPoints,
    User,
    Warning,
)

# A device clock a little ahead of the server is normal; a time far in the future is a typo.
CLOCK_SKEW = timedelta(minutes=10)
# Contacts older than this no longer wait for a confirmation on the station's list.
CONFIRM_WINDOW = timedelta(days=7)
NEARBY_WINDOW = timedelta(days=90)

# code -> (kind, message). kind: conflict (the world moved on) or rejected (bad entry).
_ERRORS = {
    "not_found": ("rejected", _l("This warning was not found.")),
    "not_allowed": ("rejected", _l("You are not working on this warning.")),
    "reassigned": (
        "conflict",
        _l("This warning was reassigned to a colleague; your entry was not recorded."),
    ),
    "resolved": (
        "conflict",
        _l("This warning was already closed; your entry was not recorded."),
    ),
    "visit_required": (
        "rejected",
        _l(
            "This station requires an in-person visit (见面劝阻) before a high-risk warning "
            "can be closed as persuaded. Log a visit that reached the person first."
        ),
    ),
    "loss_required": ("rejected", _l("Give the amount lost for 'already lost money'.")),
    "future_time": ("rejected", _l("The time lies in the future.")),
    "follow_up_past": ("rejected", _l("The follow-up time must be in the future.")),
    "own_attempt": ("rejected", _l("Someone else must confirm your own contact.")),
    "already_confirmed": ("conflict", _l("You already confirmed this contact.")),
    "attempt_not_found": ("rejected", _l("This contact was not found.")),
    "already_joined": ("conflict", _l("You are already working on this warning.")),
    "no_follow_up": ("rejected", _l("This warning has no follow-up waiting.")),
}


class FieldError(Exception):
    """A change that cannot apply; `kind` is conflict or rejected, `message()` is translated."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code
        self.kind = _ERRORS[code][0]

    def message(self) -> str:
        return error_message(self.code)


def error_message(code: str) -> str:
    """The translated sentence for an error code (also used to re-render stored results)."""
    return str(_ERRORS.get(code, _ERRORS["not_found"])[1])


# --- who may see and do what -------------------------------------------------------------


def can_view(warning: Warning | None, user: User) -> bool:
    """Owner, participants, officers with an offer, colleagues and chiefs of the station, admin.

    Every one of those is of the warning's station (or an admin), so the station decides;
    another station's warning is invisible (404, never 403).
    """
    return warning is not None and can_see_station(warning.station_id, user)


def visible_warning(warning_id: int, user: User) -> Warning | None:
    """The warning if `user` may see it, else None (callers answer 404)."""
    warning = db.session.get(Warning, warning_id)
    return warning if can_view(warning, user) else None


def is_participant(warning: Warning, user: User) -> bool:
    return bool(
        db.session.scalar(
            sa.select(Participant.id).where(
                Participant.warning_id == warning.id, Participant.user_id == user.id
            )
        )
    )


def works_on(warning: Warning, user: User) -> bool:
    """The owner and colleagues who joined may log attempts and close the warning."""
    return warning.owner_id == user.id or is_participant(warning, user)


def _had_it(warning: Warning, user: User) -> bool:
    """True when `user` once owned or was offered the warning (so losing it is a conflict)."""
    return bool(
        db.session.scalar(
            sa.select(Offer.id).where(Offer.warning_id == warning.id, Offer.officer_id == user.id)
        )
    )


def _require_worker(warning: Warning, user: User) -> None:
    if not warning.is_open:
        raise FieldError("resolved")
    if works_on(warning, user):
        return
    raise FieldError("reassigned" if _had_it(warning, user) else "not_allowed")


# --- changes -----------------------------------------------------------------------------


def log_attempt(
    warning: Warning,
    user: User,
    *,
    client_id: str,
    channel: str,
    reached: bool,
    attempted_at: datetime | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> ContactAttempt:
    """Record one attempt to reach the person; the first one puts the warning in contact."""
    now = now or clock.now()
    attempted_at = attempted_at or now
    if channel not in CHANNELS:
        raise ValueError(channel)
    if attempted_at > now + CLOCK_SKEW:
        raise FieldError("future_time")
    _require_worker(warning, user)
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
    db.session.execute(
        sa.update(Warning)
        .where(Warning.id == warning.id, Warning.status == "accepted")
        .values(status="in_contact")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Warning)
        .where(Warning.id == warning.id, Warning.first_contact_at.is_(None))
        .values(first_contact_at=attempted_at)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Warning)
        .where(Warning.id == warning.id)
        .values(last_action_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    db.session.refresh(warning)
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
        raise FieldError("attempt_not_found")
    if attempt.user_id == user.id:
        raise FieldError("own_attempt")
    already = db.session.scalar(
        sa.select(Confirmation.id).where(
            Confirmation.attempt_id == attempt.id, Confirmation.user_id == user.id
        )
    )
    if already:
        raise FieldError("already_confirmed")
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
    return bool(
        db.session.scalar(
            sa.select(ContactAttempt.id).where(
                ContactAttempt.warning_id == warning.id,
                ContactAttempt.channel == "visit",
                ContactAttempt.reached.is_(True),
            )
        )
    )


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
    _require_worker(warning, user)
    if outcome == "already_lost" and (loss_amount is None or loss_amount <= 0):
        raise FieldError("loss_required")
    if outcome == "persuaded" and visit_required(warning) and not has_reached_visit(warning):
        raise FieldError("visit_required")
    if follow_up_at is not None and follow_up_at <= now:
        raise FieldError("follow_up_past")
    closed = db.session.execute(
        sa.update(Warning)
        .where(Warning.id == warning.id, Warning.status.in_(OPEN_STATUSES))
        .values(status="resolved", resolved_at=now, last_action_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed != 1:
        raise FieldError("resolved")
    db.session.execute(
        sa.update(Offer)
        .where(Offer.warning_id == warning.id, Offer.status == "pending")
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
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
    db.session.refresh(warning)
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
    if row is None or row.follow_up_at is None or row.follow_up_done_at is not None:
        raise FieldError("no_follow_up")
    if not (works_on(warning, user) or row.recorded_by_id == user.id):
        raise FieldError("not_allowed")
    row.follow_up_done_at = now
    events.record("follow_up_done", warning=warning, actor=user)
    return row


def request_help(warning: Warning, user: User, now: datetime | None = None) -> list[int]:
    """Ask every on-duty colleague of the station for help; returns who was notified."""
    now = now or clock.now()
    _require_worker(warning, user)
    already = {warning.owner_id, user.id} | set(
        db.session.scalars(
            sa.select(Participant.user_id).where(Participant.warning_id == warning.id)
        )
    )
    ids = [
        uid
        for uid in db.session.scalars(
            sa.select(User.id)
            .where(
                User.station_id == warning.station_id,
                User.active.is_(True),
                User.duty_status == "on_duty",
                User.role.in_(("officer", "auxiliary")),
            )
            .order_by(User.id)
        )
        if uid not in already
    ]
    for uid in ids:
        outbox.enqueue("push", {"user_id": uid, "push_kind": "help", "warning_id": warning.id})
    warning.last_action_at = now
    events.record("help_requested", warning=warning, actor=user, notified=len(ids))
    return ids


def join(warning: Warning, user: User, now: datetime | None = None) -> Participant:
    """A colleague of the station joins the warning and may then log attempts."""
    now = now or clock.now()
    if not can_view(warning, user) or user.role not in ("officer", "auxiliary", "admin"):
        raise FieldError("not_found")
    if not warning.is_open:
        raise FieldError("resolved")
    if works_on(warning, user):
        raise FieldError("already_joined")
    row = Participant(warning_id=warning.id, user_id=user.id, joined_at=now)
    db.session.add(row)
    db.session.flush()
    events.record("joined", warning=warning, actor=user)
    return row


# --- reading -----------------------------------------------------------------------------


def pending_offers(user: User) -> list[Offer]:
    return list(
        db.session.scalars(
            sa.select(Offer)
            .where(Offer.officer_id == user.id, Offer.status == "pending")
            .order_by(Offer.expires_at, Offer.id)
        )
    )


_RISK_ORDER = sa.case({"high": 0, "medium": 1, "low": 2}, value=Warning.risk_level, else_=3)


def my_open_warnings(user: User) -> list[Warning]:
    """Owned or joined open warnings, most urgent first: risk, then the longest waiting."""
    joined = sa.select(Participant.warning_id).where(Participant.user_id == user.id)
    return list(
        db.session.scalars(
            sa.select(Warning)
            .where(
                sa.or_(Warning.owner_id == user.id, Warning.id.in_(joined)),
                Warning.status.in_(OPEN_STATUSES),
            )
            .order_by(_RISK_ORDER, Warning.received_at, Warning.id)
        )
    )


def follow_ups(user: User) -> list[Outcome]:
    """Follow-ups (回访) this officer scheduled and has not done yet, soonest first."""
    return list(
        db.session.scalars(
            sa.select(Outcome)
            .where(
                Outcome.recorded_by_id == user.id,
                Outcome.follow_up_at.is_not(None),
                Outcome.follow_up_done_at.is_(None),
            )
            .order_by(Outcome.follow_up_at)
        )
    )


def awaiting_confirmation(user: User, now: datetime | None = None) -> list[ContactAttempt]:
    """Reached contacts of the station, from the last week, that nobody has confirmed yet."""
    now = now or clock.now()
    confirmed = sa.select(Confirmation.attempt_id)
    query = (
        sa.select(ContactAttempt)
        .join(Warning, Warning.id == ContactAttempt.warning_id)
        .where(
            ContactAttempt.reached.is_(True),
            ContactAttempt.attempted_at >= now - CONFIRM_WINDOW,
            ContactAttempt.id.not_in(confirmed),
            ContactAttempt.user_id != user.id,
        )
        .order_by(ContactAttempt.attempted_at.desc())
    )
    if not user.is_admin:
        query = query.where(Warning.station_id == user.station_id)
    return list(db.session.scalars(query))


def distance_to(warning: Warning, user: User) -> float | None:
    """Metres from the officer's last position to the person (or the station)."""
    if user.lat is None or user.lon is None:
        return None
    lat, lon = (
        (warning.lat, warning.lon)
        if warning.lat is not None and warning.lon is not None
        else (warning.station.lat, warning.station.lon)
    )
    return geo.distance_m(user.lat, user.lon, lat, lon)


def talking_points(fraud_type: str, locale: str) -> str | None:
    row = db.session.get(TalkingPoints, fraud_type)
    if row is None:
        return None
    return row.text_en if locale.startswith("en") else row.text_zh


def earlier_warnings(warning: Warning, user: User, limit: int = 10) -> list[Warning]:
    """Earlier warnings for the same phone number: the same station only, unless admin."""
    query = (
        sa.select(Warning)
        .where(
            Warning.person_phone == warning.person_phone,
            Warning.id != warning.id,
            Warning.received_at <= warning.received_at,
        )
        .order_by(Warning.received_at.desc())
        .limit(limit)
    )
    if not user.is_admin:
        query = query.where(Warning.station_id == warning.station_id)
    return list(db.session.scalars(query))


def nearby_same_trick(warning: Warning, limit: int = 5, now: datetime | None = None):
    """Recent resolved warnings of the same fraud type in the station area, with outcomes."""
    now = now or clock.now()
    return list(
        db.session.execute(
            sa.select(Warning, Outcome)
            .join(Outcome, Outcome.warning_id == Warning.id)
            .where(
                Warning.station_id == warning.station_id,
                Warning.fraud_type == warning.fraud_type,
                Warning.id != warning.id,
                Warning.received_at >= now - NEARBY_WINDOW,
            )
            .order_by(
                # Losses first: "someone near you lost 20,000 yuan" persuades best.
                sa.case((Outcome.outcome == "already_lost", 0), else_=1),
                Warning.received_at.desc(),
            )
            .limit(limit)
        )
    )


def say_done(code: str) -> str:
    """Translated confirmation for an applied change."""
    return {
        "attempt": _("Attempt recorded."),
        "confirm": _("Contact confirmed."),
        "resolve": _("Outcome recorded; the warning is closed."),
        "help": _("Your colleagues on duty were asked for help."),
        "join": _("You joined this warning."),
        "accept": _("Warning accepted. It is yours now."),
        "decline": _("Offer declined; it moves on to the next officer."),
        "followup": _("Follow-up done."),
    }.get(code, _("Saved."))
