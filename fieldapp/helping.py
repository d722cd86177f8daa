"""Colleagues helping on a warning: asking for help, a chief asking one officer, joining.

Joining answers a call: an open help request from the officer working the warning (to every
colleague on duty), or a chief's request naming one officer. A colleague who joins logs
attempts but never takes the warning over: only its owner or a chief closes it
(`fieldwork.may_resolve`), and joining changes neither its owner nor its offers. Auxiliary
officers answer the station's call only where the station lets them take warnings; a chief
may ask one by name anywhere.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa

from fieldapp import clock, dispatch, events, outbox
from fieldapp.extensions import db
from fieldapp.fieldwork import can_view, require_worker, works_on
from fieldapp.models import (
    FIELD_ROLES,
    OPEN_STATUSES,
    HelpRequest,
    Offer,
    Participant,
    User,
    Warning,
)
from fieldapp.nearest import eligible_roles
from fieldapp.refusals import HELP_COOLDOWN_MIN, HELP_MAX_PER_WARNING, Refusal
from fieldapp.warning_lock import lock


def _answerable(warning: Warning, user: User) -> HelpRequest | None:
    """The open request `user` may join on: a chief's naming them, else the station's call."""
    open_requests = sa.select(HelpRequest).where(
        HelpRequest.warning_id == warning.id, HelpRequest.closed_at.is_(None)
    )
    named = db.session.scalar(open_requests.where(HelpRequest.invited_user_id == user.id))
    if named is not None or user.role not in eligible_roles(warning.station):
        return named
    return db.session.scalar(
        open_requests.where(HelpRequest.invited_user_id.is_(None)).order_by(HelpRequest.id).limit(1)
    )


def may_join(warning: Warning, user: User) -> bool:
    """True when `user` may join `warning` now: the pages offer Join only then (never to the
    officer it is offered to, who should accept it)."""
    return (
        warning.is_open
        and user.role in FIELD_ROLES
        and can_view(warning, user)
        and not works_on(warning, user)
        and dispatch.pending_offer(warning, user) is None
        and _answerable(warning, user) is not None
    )


def join(warning: Warning, user: User, now: datetime | None = None) -> Participant:
    """`user` joins `warning` in answer to an open request, and may then log attempts."""
    now = now or clock.now()
    if not can_view(warning, user):
        raise Refusal("not_found")
    if user.role not in FIELD_ROLES:
        raise Refusal("field_roles_only")
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("resolved")
    if works_on(warning, user):
        raise Refusal("already_joined")
    if dispatch.pending_offer(warning, user) is not None:
        raise Refusal("offer_pending")
    request = _answerable(warning, user)
    if request is None:
        if user.role not in eligible_roles(warning.station):
            raise Refusal("aux_needs_chief")
        raise Refusal("join_not_asked")
    if request.invited_user_id == user.id:
        request.closed_at = now  # answered
    row = Participant(warning_id=warning.id, user_id=user.id, joined_at=now)
    db.session.add(row)
    warning.last_action_at = now
    db.session.flush()
    events.record(
        "joined",
        warning=warning,
        actor=user,
        request_id=request.id,
        asked_by="chief" if request.invited_user_id is not None else "help",
    )
    return row


def request_help(warning: Warning, user: User, now: datetime | None = None) -> list[int]:
    """Ask every on-duty colleague of the station for help; returns who was notified.

    An officer may ask a few times per warning, a few minutes apart: each request wakes the
    whole station.
    """
    now = now or clock.now()
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("resolved")
    require_worker(warning, user)
    earlier = db.session.scalars(
        sa.select(HelpRequest.created_at)
        .where(
            HelpRequest.warning_id == warning.id,
            HelpRequest.requested_by_id == user.id,
            HelpRequest.invited_user_id.is_(None),
        )
        .order_by(HelpRequest.created_at.desc())
    ).all()
    if len(earlier) >= HELP_MAX_PER_WARNING:
        raise Refusal("help_limit")
    if earlier and earlier[0] > now - timedelta(minutes=HELP_COOLDOWN_MIN):
        raise Refusal("help_too_soon")
    working = sa.select(Participant.user_id).where(Participant.warning_id == warning.id)
    offered = sa.select(Offer.officer_id).where(
        Offer.warning_id == warning.id, Offer.status == "pending"
    )
    ids = list(
        db.session.scalars(
            sa.select(User.id)
            .where(
                User.station_id == warning.station_id,
                User.active.is_(True),
                User.duty_status == "on_duty",
                User.role.in_(eligible_roles(warning.station)),
                User.id.not_in(working),
                User.id.not_in(offered),  # they have the offer's own alert
                User.id != user.id,
            )
            .order_by(User.id)
        )
    )
    ids = [uid for uid in ids if uid != warning.owner_id]
    db.session.add(HelpRequest(warning_id=warning.id, requested_by_id=user.id, created_at=now))
    for uid in ids:
        outbox.enqueue("push", {"user_id": uid, "push_kind": "help", "warning_id": warning.id})
    warning.last_action_at = now
    events.record("help_requested", warning=warning, actor=user, notified=len(ids))
    return ids


def ask_to_join(
    warning: Warning, officer: User, chief: User, now: datetime | None = None
) -> HelpRequest:
    """A chief asks one named officer (or auxiliary) of the station to join `warning`."""
    now = now or clock.now()
    if not (chief.is_chief and can_view(warning, chief)):
        raise Refusal("not_found")
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("resolved")
    if not officer.works_at(warning.station_id):
        raise Refusal("invitee_not_eligible")
    if works_on(warning, officer):
        raise Refusal("invitee_working")
    if dispatch.pending_offer(warning, officer) is not None:
        raise Refusal("invitee_has_offer")
    already = db.session.scalar(
        sa.select(HelpRequest.id).where(
            HelpRequest.warning_id == warning.id,
            HelpRequest.invited_user_id == officer.id,
            HelpRequest.closed_at.is_(None),
        )
    )
    if already is not None:
        raise Refusal("already_asked")
    row = HelpRequest(
        warning_id=warning.id, requested_by_id=chief.id, invited_user_id=officer.id, created_at=now
    )
    db.session.add(row)
    db.session.flush()
    outbox.enqueue("push", {"user_id": officer.id, "push_kind": "help", "warning_id": warning.id})
    events.record("join_requested", warning=warning, actor=chief, user_id=officer.id)
    return row
