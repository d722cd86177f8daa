"""What the officer's pages read: lists, a warning's surroundings, its timeline with notes."""

from datetime import datetime, timedelta

import sqlalchemy as sa

from fieldapp import clock, events, geo
from fieldapp.extensions import db
from fieldapp.models import (
    OPEN_STATUSES,
    Confirmation,
    ContactAttempt,
    Offer,
    Outcome,
    Participant,
    TalkingPoints,
    User,
    Warning,
)

# Contacts older than this no longer wait for a confirmation on the station's list.
CONFIRM_WINDOW = timedelta(days=7)
NEARBY_WINDOW = timedelta(days=90)


def pending_offers(user: User) -> list[Offer]:
    """Offers waiting for `user`'s answer, the soonest to expire first."""
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
    """The persuasion aid for a fraud type in the reader's language, if written."""
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


def timeline(warning: Warning) -> list[dict]:
    """The warning's events as the chief's page tells them (who, when, reached or not), each
    with the note its author typed, for everyone who may see the warning (its station).

    Items: at, who, text, kind, id, and note (str or None); attempt items also `reached`.
    """
    # Imported late: the board package imports the domain modules.
    from fieldapp.board import timeline as board_timeline

    rows = events.timeline(warning.id)
    items = board_timeline.render(rows)
    attempts = {
        a.id: a
        for a in db.session.scalars(
            sa.select(ContactAttempt).where(ContactAttempt.warning_id == warning.id)
        )
    }
    confirmations = dict(
        db.session.execute(
            sa.select(Confirmation.id, Confirmation.note)
            .join(ContactAttempt, ContactAttempt.id == Confirmation.attempt_id)
            .where(ContactAttempt.warning_id == warning.id)
        ).all()
    )
    outcome = db.session.scalar(sa.select(Outcome).where(Outcome.warning_id == warning.id))
    for event, item in zip(rows, items, strict=True):
        data = event.data or {}
        item["note"] = None
        if event.kind == "attempt" and data.get("attempt_id") in attempts:
            attempt = attempts[data["attempt_id"]]
            item["note"], item["reached"] = attempt.note, attempt.reached
        elif event.kind == "confirmed":
            item["note"] = confirmations.get(data.get("confirmation_id"))
        elif event.kind == "resolved" and outcome is not None:
            item["note"] = outcome.note
    return items
