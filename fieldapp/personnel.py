"""People management: who may manage whom, and the changes a chief or an admin makes.

Rules (docs/architecture.md, "People management"):
- A chief sees the people of their own station and manages its officers and auxiliaries:
  unlock, reset a password, deactivate, reactivate, and switch between officer and auxiliary.
- An admin sees and manages everyone, and alone may grant or take away chief and admin.
- Nobody manages themselves here (their own password has its own page), and the last active
  admin can be neither demoted nor deactivated, so the county is never left without one.

Every change is a compare-and-set on the state it was decided on, records one event (ids and
role codes only, never names) and leaves the commit to its caller. `actor` is None for the CLI.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from fieldapp import clock, dispatch, events, nearest
from fieldapp.auth import passwords, sessions, throttle
from fieldapp.extensions import db
from fieldapp.models import FIELD_ROLES, OPEN_STATUSES, ROLES, Offer, Station, User, Warning
from fieldapp.refusals import Refusal

ONE_TIME_PASSWORD_VALID = timedelta(hours=72)


def can_see(actor: User, person: User) -> bool:
    """True when `actor` may see `person` in people management."""
    return actor.is_admin or (actor.role == "chief" and person.station_id == actor.station_id)


def can_manage(actor: User | None, person: User) -> bool:
    """True when `actor` (None: the command line) may change `person`'s account."""
    if actor is None:
        return True
    if actor.id == person.id:
        return False
    if actor.is_admin:
        return True
    return (
        actor.role == "chief"
        and person.station_id == actor.station_id
        and person.role in FIELD_ROLES
    )


def assignable_roles(actor: User | None, person: User) -> tuple[str, ...]:
    """The roles `actor` may give `person` (their current one included)."""
    if not can_manage(actor, person):
        return ()
    return ROLES if actor is None or actor.is_admin else FIELD_ROLES


def people_query(actor: User, station_id: int | None = None, search: str = "") -> sa.Select:
    """The people `actor` may see, optionally of one station and matching `search`."""
    query = sa.select(User).join(Station, Station.id == User.station_id)
    if not actor.is_admin:
        query = query.where(User.station_id == actor.station_id)
    elif station_id is not None:
        query = query.where(User.station_id == station_id)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(
                User.username.ilike(pattern, escape="\\"),
                User.display_name.ilike(pattern, escape="\\"),
            )
        )
    role_order = sa.case({role: i for i, role in enumerate(ROLES)}, value=User.role)
    return query.order_by(Station.code, User.active.desc(), role_order, User.display_name, User.id)


@dataclass(frozen=True)
class Workload:
    open_warnings: list[int]  # ids of open warnings the person owns
    pending_offers: int


def workload(person: User) -> Workload:
    """What `person` holds right now: deactivating them leaves the owned warnings to reassign."""
    owned = db.session.scalars(
        sa.select(Warning.id)
        .where(Warning.owner_id == person.id, Warning.status.in_(OPEN_STATUSES))
        .order_by(Warning.id)
    ).all()
    pending = db.session.scalar(
        sa.select(sa.func.count()).where(Offer.officer_id == person.id, Offer.status == "pending")
    )
    return Workload(list(owned), pending or 0)


def _record(kind: str, actor: User | None, person: User, **data) -> None:
    events.record(kind, actor=actor, station_id=person.station_id, user_id=person.id, **data)


def _check(actor: User | None, person: User) -> None:
    if not can_manage(actor, person):
        raise Refusal("forbidden")


def unlock(actor: User | None, person: User) -> int:
    """Forget the failed logins counted against `person`; returns how many buckets held some."""
    _check(actor, person)
    cleared = throttle.clear_account(person.username)
    _record("user_unlocked", actor, person, buckets=cleared)
    return cleared


def reset_password(
    actor: User | None, person: User, seen_version: int | None = None, now: datetime | None = None
) -> str:
    """Give `person` a one-time password (returned, shown once, never stored in clear).

    Their sessions end, failed logins are forgotten, and their first login leads to the
    change-password page. `seen_version` (the session version the confirm page was built on)
    makes a double submit reset once: the second one finds the version moved on.
    """
    _check(actor, person)
    now = now or clock.now()
    password = passwords.one_time_password()
    query = sa.update(User).where(User.id == person.id)
    if seen_version is not None:
        query = query.where(User.session_version == seen_version)
    done = db.session.execute(
        query.values(
            password_hash=passwords.hash_password(password),
            must_change_password=True,
            temp_password_expires_at=now + ONE_TIME_PASSWORD_VALID,
        ).execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise Refusal("changed")
    sessions.end_all_sessions(person, reason="password_reset")
    throttle.clear_account(person.username)
    _record("password_reset", actor, person)
    return password


def _other_active_admins(person: User) -> int:
    # Every active admin row is locked, in id order, so two admins demoting each other at once
    # take turns: the second then sees the first's change and finds itself the last one.
    rows = db.session.scalars(
        sa.select(User.id)
        .where(User.role == "admin", User.active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    return len([user_id for user_id in rows if user_id != person.id])


def _withdraw_offers(person: User, now: datetime) -> int:
    """End `person`'s pending offers now; each warning moves on to the next officer."""
    pending = db.session.scalars(
        sa.select(Offer)
        .where(Offer.officer_id == person.id, Offer.status == "pending")
        .order_by(Offer.warning_id)
    ).all()
    withdrawn = 0
    for offer in pending:
        # The warning first, then its offer: the order an accept takes them in, so a racing
        # accept waits for this instead of deadlocking with it.
        db.session.execute(
            sa.select(Warning.id).where(Warning.id == offer.warning_id).with_for_update()
        )
        withdrawn += dispatch.expire(offer, now)
    return withdrawn


def deactivate(actor: User | None, person: User, now: datetime | None = None) -> Workload:
    """Close `person`'s account: sessions end, off duty, pending offers move on, no new offers.

    Returns what they still hold (the warnings they own stay theirs until a chief reassigns).
    """
    _check(actor, person)
    now = now or clock.now()
    if person.role == "admin" and not _other_active_admins(person):
        raise Refusal("last_admin")
    done = db.session.execute(
        sa.update(User)
        .where(User.id == person.id, User.active.is_(True))
        .values(active=False, duty_status="off_duty", duty_changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise Refusal("already_inactive")
    sessions.end_all_sessions(person, reason="deactivated")
    withdrawn = _withdraw_offers(person, now)
    _record("user_deactivated", actor, person, offers_withdrawn=withdrawn)
    return workload(person)


def reactivate(actor: User | None, person: User) -> None:
    """Open `person`'s account again; they log in afresh (and go on duty themselves)."""
    _check(actor, person)
    done = db.session.execute(
        sa.update(User)
        .where(User.id == person.id, User.active.is_(False))
        .values(active=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise Refusal("already_active")
    db.session.refresh(person)
    _record("user_reactivated", actor, person)


def change_role(
    actor: User | None, person: User, new_role: str, seen_role: str, now: datetime | None = None
) -> None:
    """Give `person` `new_role`, if they still hold `seen_role` (what the form was built on).

    Someone who can no longer take offers (now a chief, or an auxiliary where auxiliaries do
    not) goes off duty and their pending offers move on.
    """
    if new_role not in assignable_roles(actor, person):
        raise Refusal("forbidden")
    if new_role == seen_role:
        raise Refusal("unchanged")
    now = now or clock.now()
    if seen_role == "admin" and not _other_active_admins(person):
        raise Refusal("last_admin")
    done = db.session.execute(
        sa.update(User)
        .where(User.id == person.id, User.role == seen_role)
        .values(role=new_role)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise Refusal("changed")
    db.session.refresh(person)
    withdrawn = 0
    if new_role not in nearest.eligible_roles(person.station):
        withdrawn = _withdraw_offers(person, now)
        person.duty_status, person.duty_changed_at = "off_duty", now
    _record("role_changed", actor, person, from_role=seen_role, to_role=new_role, offers=withdrawn)
