"""Moving a warning through its offers: offer, accept, decline, expire, reassign.

Plain functions over the session: each adds to it and leaves the commit to its caller, so the
state change, its event and the notifications it causes commit together or not at all. Every
change that checks a warning's state starts with `warning_lock.lock`, a compare-and-set on the
warning's status that holds its row until commit, so two racing requests run one after the
other and the second sees what the first did (see fieldapp/warning_lock.py).

Parallel offers: a high-risk warning goes to the station's `parallel_offers_high` nearest at
once (other risk levels to one). The first accept wins under the lock; the other pending
offers close as "taken" and their officers are told. The warning moves on (to the next batch
of nearest not yet asked) only when none of its offers is pending any more.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa

from fieldapp import clock, events, fallback, geo, outbox
from fieldapp.extensions import db
from fieldapp.models import (
    OPEN_STATUSES,
    HelpRequest,
    Offer,
    OutboxMessage,
    Station,
    User,
    Warning,
)
from fieldapp.nearest import Candidate, choose, eligible_roles, nearest_candidates, target_point
from fieldapp.refusals import Refusal
from fieldapp.warning_lock import lock

# Statuses in which a warning waits for someone to take it.
UNTAKEN = ("received", "offered", "unassigned")


MAX_PARALLEL = 5


def offer_width(warning: Warning, station: Station) -> int:
    """How many officers one round of dispatch asks at once for `warning`."""
    if warning.risk_level != "high":
        return 1
    return max(1, min(MAX_PARALLEL, station.parallel_offers_high or 1))


def choose_many(candidates: list[Candidate], n: int) -> list[Candidate]:
    """`choose` applied `n` times, each time among those not yet picked."""
    left, picked = list(candidates), []
    while left and len(picked) < n:
        pick = choose(left)
        picked.append(pick)
        left.remove(pick)
    return picked


def _offered_ids(warning: Warning) -> set[int]:
    return set(
        db.session.scalars(sa.select(Offer.officer_id).where(Offer.warning_id == warning.id))
    )


def _notify(user_id: int, kind: str, warning: Warning, offer: Offer | None = None) -> OutboxMessage:
    payload = {"user_id": user_id, "push_kind": kind, "warning_id": warning.id}
    if offer is not None:
        payload["offer_id"] = offer.id
    return outbox.enqueue("push", payload)


def make_offer(
    warning: Warning,
    officer: User,
    now: datetime,
    *,
    distance_m: float | None = None,
    reason: str = "dispatch",
    actor: User | None = None,
    rank: int | None = None,
) -> Offer:
    """Offer `warning` to `officer`, with its push, SMS fallback check and timeout queued.

    `rank` (the offer's place in the warning's chain) is counted when not given.
    """
    station = warning.station
    if rank is None:
        rank = 1
        if warning.status != "received":  # a new warning's first offer needs no count
            rank += (
                db.session.scalar(sa.select(sa.func.count()).where(Offer.warning_id == warning.id))
                or 0
            )
    offer = _new_offer(
        warning, officer, now, station=station, distance_m=distance_m, reason=reason, rank=rank
    )
    db.session.flush()
    _announce(warning, offer, now, actor=actor)
    return offer


def _new_offer(
    warning: Warning,
    officer: User,
    now: datetime,
    *,
    station: Station,
    distance_m: float | None,
    reason: str,
    rank: int,
) -> Offer:
    offer = Offer(
        officer_id=officer.id,
        rank=rank,
        distance_m=distance_m,
        reason=reason,
        status="pending",
        created_at=now,
        expires_at=now + timedelta(seconds=station.ack_timeout_s),
    )
    if warning.id is None:
        offer.warning = warning  # not stored yet: both are inserted in one flush
    else:
        offer.warning_id = warning.id
    db.session.add(offer)
    warning.status = "offered"
    warning.last_action_at = now
    return offer


def _announce(warning: Warning, offer: Offer, now: datetime, actor: User | None) -> OutboxMessage:
    """The event of a stored offer, its push, SMS fallback check and timeout; returns the push."""
    events.record(
        "offered",
        warning=warning,
        actor=actor,
        officer_id=offer.officer_id,
        offer_id=offer.id,
        rank=offer.rank,
        distance_m=round(offer.distance_m) if offer.distance_m is not None else None,
        reason=offer.reason,
    )
    push = _notify(offer.officer_id, "offer", warning, offer)
    fallback.schedule(offer, warning.station, now)
    outbox.enqueue("offer_timeout", {"offer_id": offer.id}, due_at=offer.expires_at)
    return push


def dispatch(warning: Warning, now: datetime | None = None) -> Offer | None:
    """Offer `warning` to the nearest eligible officers not yet asked (`offer_width` of them);
    none left → unassigned. Returns the nearest one's offer."""
    now = now or clock.now()
    station = warning.station
    lat, lon = target_point(warning, station)
    # A warning just received has had no offers yet: no one to leave out.
    asked = _offered_ids(warning) if warning.status != "received" else set()
    picks = choose_many(
        nearest_candidates(station, lat, lon, now, asked), offer_width(warning, station)
    )
    if not picks:
        mark_unassigned(warning, now)
        return None
    rank = 1
    if warning.status != "received":  # the next places in the warning's chain of offers
        rank += (
            db.session.scalar(sa.select(sa.func.count()).where(Offer.warning_id == warning.id)) or 0
        )
    offers = _offers_to(warning, picks, now, station, first_rank=rank)
    db.session.flush()
    for offer in offers:
        _announce(warning, offer, now, actor=None)
    return offers[0]


def plan_first(warning: Warning, station: Station, now: datetime) -> list[Offer]:
    """For a warning not yet stored: add its first offers, to the nearest eligible officers
    (`offer_width` of them), or mark it unassigned (no offers). Then store the warning and
    call `announce_first`.

    Choosing before the insert writes the warning once, with its final status, and the
    warning and its offers in one flush; their events and notifications follow in another.
    """
    lat, lon = target_point(warning, station)
    picks = choose_many(nearest_candidates(station, lat, lon, now), offer_width(warning, station))
    if not picks:
        warning.status = "unassigned"
        return []
    return _offers_to(warning, picks, now, station, first_rank=1)


def _offers_to(
    warning: Warning, picks: list[Candidate], now: datetime, station: Station, first_rank: int
) -> list[Offer]:
    """One dispatch offer per chosen officer, ranked in the warning's chain from `first_rank`."""
    return [
        _new_offer(
            warning,
            pick.officer,
            now,
            station=station,
            distance_m=pick.distance_m,
            reason="dispatch",
            rank=first_rank + i,
        )
        for i, pick in enumerate(picks)
    ]


def announce_first(warning: Warning, offers: list[Offer], now: datetime) -> OutboxMessage | None:
    """After `plan_first` and the insert: the offers' events and push rows (the nearest's
    returned, for the express send), or the chiefs' alerts when nobody could be asked."""
    if not offers:
        mark_unassigned(warning, now)
        return None
    pushes = [_announce(warning, offer, now, actor=None) for offer in offers]
    return pushes[0]


def mark_unassigned(warning: Warning, now: datetime) -> None:
    """Nobody left to ask: the warning waits on the board and every chief is alerted."""
    warning.status = "unassigned"
    warning.owner_id = None
    warning.last_action_at = now
    events.record("unassigned", warning=warning)
    chiefs = db.session.scalars(
        sa.select(User.id).where(
            User.station_id == warning.station_id, User.role == "chief", User.active.is_(True)
        )
    )
    for chief_id in chiefs:
        _notify(chief_id, "reminder", warning)


def pending_offer(warning: Warning, user: User) -> Offer | None:
    """`user`'s offer for `warning` that waits for an answer, if any."""
    return db.session.scalar(
        sa.select(Offer)
        .where(Offer.warning_id == warning.id, Offer.officer_id == user.id)
        .where(Offer.status == "pending")
        .order_by(Offer.id.desc())
    )


def had_offer(warning: Warning, user: User) -> bool:
    """True when `user` was ever offered `warning` (so losing it is a conflict, not a mistake)."""
    found = sa.select(Offer.id).where(Offer.warning_id == warning.id, Offer.officer_id == user.id)
    return db.session.scalar(found.limit(1)) is not None


def _cancel_pending(warning: Warning, now: datetime) -> None:
    query = sa.update(Offer).where(Offer.warning_id == warning.id, Offer.status == "pending")
    db.session.execute(
        query.values(status="cancelled", cancelled_at=now).execution_options(
            synchronize_session=False
        )
    )


def close_help_requests(warning: Warning, now: datetime) -> None:
    """The warning closed or changed hands: nobody joins on an old request any more."""
    db.session.execute(
        sa.update(HelpRequest)
        .where(HelpRequest.warning_id == warning.id, HelpRequest.closed_at.is_(None))
        .values(closed_at=now)
        .execution_options(synchronize_session=False)
    )


def accept(warning: Warning, user: User, now: datetime | None = None) -> Offer:
    """`user` takes `warning` through their pending offer; exactly one accept can win.

    On a Refusal the caller rolls the transaction back (sync and the views do).
    """
    now = now or clock.now()
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("closed")
    offer = pending_offer(warning, user)
    if offer is None:
        if warning.owner_id == user.id:
            raise Refusal("already_yours")
        # Their offer was withdrawn because a colleague accepted first: say so plainly.
        if warning.owner_id is not None and had_offer(warning, user):
            raise Refusal("taken")
        raise Refusal("no_offer")
    if warning.status not in UNTAKEN:  # never so while an offer is pending; refuse all the same
        raise Refusal("taken")
    # Auxiliaries take warnings where the station allows it, or when a chief handed them one.
    if offer.reason != "reassign" and user.role not in eligible_roles(warning.station):
        raise Refusal("not_eligible")
    # An offer past its time but not yet expired by the worker may still be accepted: a late
    # yes beats nobody, and the lock above decides if the warning has moved on.
    offer.status, offer.accepted_at = "accepted", now
    warning.status, warning.owner_id = "accepted", user.id
    warning.accepted_at = warning.last_action_at = now
    events.record("accepted", warning=warning, actor=user, offer_id=offer.id)
    _close_taken(warning, offer, now)
    return offer


def _close_taken(warning: Warning, winner: Offer, now: datetime) -> None:
    """The other pending offers of `warning` (parallel ones) close as taken; each holder is
    told by push and on the live stream, so their phone stops asking."""
    others = db.session.scalars(
        sa.select(Offer)
        .where(Offer.warning_id == warning.id, Offer.status == "pending", Offer.id != winner.id)
        .order_by(Offer.id)
    ).all()
    for other in others:
        other.status, other.cancelled_at = "taken", now
        events.record(
            "offer_taken", warning=warning, offer_id=other.id, officer_id=other.officer_id
        )
        _notify(other.officer_id, "taken", warning)


def decline(warning: Warning, user: User, now: datetime | None = None) -> Offer:
    """`user` turns their pending offer down; the warning moves on to the next nearest."""
    now = now or clock.now()
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("closed")
    offer = pending_offer(warning, user)
    if offer is None:
        raise Refusal("no_offer")
    offer.status, offer.declined_at = "declined", now
    events.record("declined", warning=warning, actor=user, offer_id=offer.id)
    _move_on(warning, now)
    return offer


def expire(offer: Offer, now: datetime | None = None) -> bool:
    """Called when an offer's time is up; returns False when it was already answered."""
    now = now or clock.now()
    warning = offer.warning
    if offer.status != "pending" or not lock(warning, OPEN_STATUSES):
        return False
    db.session.refresh(offer)
    if offer.status != "pending":  # answered while we waited for the lock
        return False
    offer.status, offer.expired_at = "expired", now
    events.record("offer_expired", warning=warning, offer_id=offer.id, officer_id=offer.officer_id)
    _move_on(warning, now)
    return True


def _move_on(warning: Warning, now: datetime) -> None:
    """After an offer went unanswered: the next nearest, unless another offer still waits."""
    still_pending = db.session.scalar(
        sa.select(sa.func.count()).where(Offer.warning_id == warning.id, Offer.status == "pending")
    )
    if warning.status == "offered" and not still_pending:
        dispatch(warning, now)


def reassign(warning: Warning, to_user: User, chief: User, now: datetime | None = None) -> Offer:
    """A chief hands `warning` to `to_user`: open offers are withdrawn, the old owner told,
    and open help requests closed (nobody joins on the old owner's call any more)."""
    now = now or clock.now()
    if not lock(warning, OPEN_STATUSES):
        raise Refusal("closed")
    if not to_user.works_at(warning.station_id):
        raise Refusal("invitee_not_eligible")
    if warning.owner_id == to_user.id or pending_offer(warning, to_user) is not None:
        raise Refusal("already_theirs")
    # Officers whose offer is withdrawn are told too, so their phone stops asking.
    withdrawn = set(
        db.session.scalars(
            sa.select(Offer.officer_id).where(
                Offer.warning_id == warning.id, Offer.status == "pending"
            )
        )
    )
    _cancel_pending(warning, now)
    close_help_requests(warning, now)
    previous = warning.owner_id
    if previous is not None:
        withdrawn.add(previous)
    for user_id in sorted(withdrawn - {to_user.id}):
        _notify(user_id, "reassigned", warning)
    warning.owner_id = None
    events.record(
        "reassigned", warning=warning, actor=chief, from_user_id=previous, to_user_id=to_user.id
    )
    distance = None
    if to_user.lat is not None and to_user.lon is not None:
        lat, lon = target_point(warning, warning.station)
        distance = geo.distance_m(lat, lon, to_user.lat, to_user.lon)
    return make_offer(warning, to_user, now, distance_m=distance, reason="reassign", actor=chief)
