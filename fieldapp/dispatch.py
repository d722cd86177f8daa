"""Choosing officers and moving a warning through its offers: plain functions over the session.

Every function here adds to the current session and leaves the commit to its caller, so the
state change, its event and the notifications it causes commit together or not at all.
State changes are compare-and-set UPDATEs, so two requests racing for the same warning
cannot both win, on SQLite or on PostgreSQL.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa

from fieldapp import clock, events, geo, outbox
from fieldapp.extensions import db
from fieldapp.models import OPEN_STATUSES, Offer, OutboxMessage, Station, User, Warning

# Officers this close to the nearest one count as equally near; the lighter workload wins.
TIE_M = 50.0
# A bounding box (index range scan) first, then the whole station. A station's officers are
# tens, so the whole-station query is cheap; the box keeps a station of thousands fast too
# (bench/bench_nearest.py). One box, not a ladder: in a rural county a small box is often
# empty, and every extra rung is another round trip before the phone buzzes.
SEARCH_RADII_M = (10_000.0, None)
NEAREST_LIMIT = 8


class DispatchError(Exception):
    """A change that cannot apply; `code` says why and the message is safe to show."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class Candidate:
    officer: User
    distance_m: float
    workload: int | None  # counted only for officers tied with the nearest


def target_point(warning: Warning, station: Station) -> tuple[float, float]:
    """Where the officer should head: the person's location, else the station."""
    if warning.lat is not None and warning.lon is not None:
        return warning.lat, warning.lon
    return station.lat, station.lon


def eligible_roles(station: Station) -> tuple[str, ...]:
    return ("officer", "auxiliary") if station.auxiliaries_take_offers else ("officer",)


def workloads(user_ids: list[int]) -> dict[int, int]:
    """Open warnings owned plus offers pending, per user."""
    if not user_ids:
        return {}
    counts = dict.fromkeys(user_ids, 0)
    owned = db.session.execute(
        sa.select(Warning.owner_id, sa.func.count())
        .where(Warning.owner_id.in_(user_ids), Warning.status.in_(OPEN_STATUSES))
        .group_by(Warning.owner_id)
    )
    pending = db.session.execute(
        sa.select(Offer.officer_id, sa.func.count())
        .where(Offer.officer_id.in_(user_ids), Offer.status == "pending")
        .group_by(Offer.officer_id)
    )
    for user_id, count in [*owned, *pending]:
        counts[user_id] += count
    return counts


@lru_cache(maxsize=8)
def _nearest_statement(boxed: bool, excluding: bool, limit: int) -> sa.Select:
    """The nearest-officers query, built once per shape with bound parameters.

    It sits between every new warning and the phone that buzzes for it, and building the
    expression anew (and its cache key) costs about as much as the database takes to run it.
    """
    lat = sa.bindparam("lat", type_=sa.Float)
    lon = sa.bindparam("lon", type_=sa.Float)
    k = sa.bindparam("k", type_=sa.Float)
    query = sa.select(User).where(
        User.station_id == sa.bindparam("station_id"),
        User.active.is_(True),
        User.role.in_(sa.bindparam("roles", expanding=True)),
        User.duty_status == "on_duty",
        User.position_at >= sa.bindparam("fresh_after", type_=User.position_at.type),
        User.lat.is_not(None),
        User.lon.is_not(None),
    )
    if excluding:
        query = query.where(User.id.not_in(sa.bindparam("exclude", expanding=True)))
    if boxed:
        query = query.where(
            User.lat.between(sa.bindparam("lat_lo"), sa.bindparam("lat_hi")),
            User.lon.between(sa.bindparam("lon_lo"), sa.bindparam("lon_hi")),
        )
    # Equirectangular distance is exact enough to order a county and needs no SQL trig.
    approx = (User.lat - lat) * (User.lat - lat) + (User.lon - lon) * k * (User.lon - lon) * k
    return query.order_by(approx, User.id).limit(limit)


def nearest_candidates(
    station: Station,
    lat: float,
    lon: float,
    now: datetime,
    exclude_ids: set[int] = frozenset(),
    limit: int = NEAREST_LIMIT,
) -> list[Candidate]:
    """On-duty officers of `station` with a fresh position, nearest first."""
    params = {
        "station_id": station.id,
        "roles": list(eligible_roles(station)),
        "fresh_after": now - timedelta(seconds=station.position_stale_s),
        "lat": lat,
        "lon": lon,
        "k": math.cos(math.radians(lat)),
    }
    if exclude_ids:
        params["exclude"] = sorted(exclude_ids)
    rows: list[User] = []
    for radius in SEARCH_RADII_M:
        if radius is not None:
            dlat, dlon = geo.degrees_box(lat, radius)
            params.update(
                lat_lo=lat - dlat, lat_hi=lat + dlat, lon_lo=lon - dlon, lon_hi=lon + dlon
            )
        query = _nearest_statement(radius is not None, bool(exclude_ids), limit)
        rows = list(db.session.scalars(query, params))
        # A box's corners lie farther than its radius: someone just outside an edge may be
        # nearer than a corner hit, so a box answer counts only when it lies inside the circle
        # (plus the tie margin, so tied officers are not cut off).
        if rows and (
            radius is None or geo.distance_m(lat, lon, rows[0].lat, rows[0].lon) + TIE_M <= radius
        ):
            break
    if not rows:
        return []
    placed = sorted(
        ((geo.distance_m(lat, lon, u.lat, u.lon), u) for u in rows),
        key=lambda pair: (pair[0], pair[1].id),
    )
    # Workloads matter only between officers tied with the nearest; most of the time there is
    # one, and the two counting queries are skipped.
    tied = [u.id for d, u in placed if d - placed[0][0] <= TIE_M]
    loads = workloads(tied) if len(tied) > 1 else {}
    return [Candidate(u, d, loads.get(u.id)) for d, u in placed]


def choose(candidates: list[Candidate]) -> Candidate | None:
    """The nearest; among those within TIE_M of the nearest, the lightest workload."""
    if not candidates:
        return None
    nearest = candidates[0].distance_m
    tied = [c for c in candidates if c.distance_m - nearest <= TIE_M]
    return min(tied, key=lambda c: (c.workload or 0, c.distance_m, c.officer.id))


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
    outbox.enqueue(
        "receipt_check",
        {"offer_id": offer.id},
        due_at=now + timedelta(seconds=warning.station.receipt_timeout_s),
    )
    outbox.enqueue("offer_timeout", {"offer_id": offer.id}, due_at=offer.expires_at)
    return push


def dispatch(warning: Warning, now: datetime | None = None) -> Offer | None:
    """Offer `warning` to the nearest eligible officer not yet asked; none left → unassigned."""
    now = now or clock.now()
    station = warning.station
    lat, lon = target_point(warning, station)
    # A warning just received has had no offers yet: no one to leave out.
    asked = _offered_ids(warning) if warning.status != "received" else set()
    pick = choose(nearest_candidates(station, lat, lon, now, asked))
    if pick is None:
        mark_unassigned(warning, now)
        return None
    return make_offer(warning, pick.officer, now, distance_m=pick.distance_m)


def plan_first(warning: Warning, station: Station, now: datetime) -> Offer | None:
    """For a warning not yet stored: add its first offer, to the nearest eligible officer, or
    mark it unassigned (None). Then store the warning and call `announce_first`.

    Choosing before the insert writes the warning once, with its final status, and the
    warning and its offer in one flush; their events and notifications follow in another.
    """
    lat, lon = target_point(warning, station)
    pick = choose(nearest_candidates(station, lat, lon, now))
    if pick is None:
        warning.status = "unassigned"
        return None
    return _new_offer(
        warning,
        pick.officer,
        now,
        station=station,
        distance_m=pick.distance_m,
        reason="dispatch",
        rank=1,
    )


def announce_first(warning: Warning, offer: Offer | None, now: datetime) -> OutboxMessage | None:
    """After `plan_first` and the insert: the offer's event and push row (returned), or the
    chiefs' alerts when nobody could be asked."""
    if offer is None:
        mark_unassigned(warning, now)
        return None
    return _announce(warning, offer, now, actor=None)


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


def _pending_offer_for(warning: Warning, user: User) -> Offer | None:
    return db.session.scalar(
        sa.select(Offer)
        .where(Offer.warning_id == warning.id, Offer.officer_id == user.id)
        .where(Offer.status == "pending")
        .order_by(Offer.id.desc())
    )


def _had_offer(warning: Warning, user: User) -> bool:
    return (
        db.session.scalar(
            sa.select(sa.func.count()).where(
                Offer.warning_id == warning.id, Offer.officer_id == user.id
            )
        )
        or 0
    ) > 0


def accept(warning: Warning, user: User, now: datetime | None = None) -> Offer:
    """`user` takes `warning` through their pending offer; exactly one accept can win.

    On DispatchError the caller rolls the transaction back (the API views do): the
    compare-and-set on the warning may already have run when the offer's own one fails.
    """
    now = now or clock.now()
    offer = _pending_offer_for(warning, user)
    if offer is None:
        # The warning row in this session may predate a colleague's accept: read it again.
        db.session.refresh(warning)
        if warning.owner_id == user.id:
            raise DispatchError("already_yours")
        # Their offer was withdrawn because a colleague accepted first: say so plainly.
        if warning.owner_id is not None and _had_offer(warning, user):
            raise DispatchError("taken")
        raise DispatchError("no_offer")
    # An offer past its time but not yet expired by the worker may still be accepted: a late
    # yes beats nobody, and the compare-and-set below decides if the warning has moved on.
    won = db.session.execute(
        sa.update(Warning)
        .where(Warning.id == warning.id, Warning.status.in_(("offered", "unassigned", "received")))
        .values(status="accepted", owner_id=user.id, accepted_at=now, last_action_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        db.session.refresh(warning)
        raise DispatchError("taken" if warning.owner_id else "closed")
    took = db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer.id, Offer.status == "pending")
        .values(status="accepted", accepted_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if took != 1:
        raise DispatchError("no_offer")
    db.session.execute(
        sa.update(Offer)
        .where(Offer.warning_id == warning.id, Offer.status == "pending", Offer.id != offer.id)
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(warning)
    db.session.refresh(offer)
    events.record("accepted", warning=warning, actor=user, offer_id=offer.id)
    return offer


def decline(warning: Warning, user: User, now: datetime | None = None) -> Offer:
    """`user` turns their pending offer down; the warning moves on to the next nearest."""
    now = now or clock.now()
    offer = _pending_offer_for(warning, user)
    if offer is None:
        raise DispatchError("no_offer")
    done = db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer.id, Offer.status == "pending")
        .values(status="declined", declined_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise DispatchError("no_offer")
    db.session.refresh(offer)
    events.record("declined", warning=warning, actor=user, offer_id=offer.id)
    _move_on(warning, now)
    return offer


def expire(offer: Offer, now: datetime | None = None) -> bool:
    """Called when an offer's time is up; returns False when it was already answered."""
    now = now or clock.now()
    done = db.session.execute(
        sa.update(Offer)
        .where(Offer.id == offer.id, Offer.status == "pending")
        .values(status="expired", expired_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        return False
    db.session.refresh(offer)
    warning = offer.warning
    events.record("offer_expired", warning=warning, offer_id=offer.id, officer_id=offer.officer_id)
    _move_on(warning, now)
    return True


def _move_on(warning: Warning, now: datetime) -> None:
    db.session.refresh(warning)
    still_pending = db.session.scalar(
        sa.select(sa.func.count()).where(Offer.warning_id == warning.id, Offer.status == "pending")
    )
    if warning.status == "offered" and not still_pending:
        dispatch(warning, now)


def set_duty(user: User, status: str, now: datetime | None = None) -> list[Offer]:
    """Put `user` on or off duty; going off duty hands back their pending offers at once, so
    the next officer is asked now instead of after the timeout. Returns the offers handed back.
    """
    now = now or clock.now()
    handed_back: list[Offer] = []
    if user.duty_status == status:
        return handed_back
    user.duty_status = status
    user.duty_changed_at = now
    events.record("duty_changed", actor=user, status=status)
    if status == "off_duty":
        pending = db.session.scalars(
            sa.select(Offer).where(Offer.officer_id == user.id, Offer.status == "pending")
        ).all()
        for offer in pending:
            try:
                handed_back.append(decline(offer.warning, user, now))
            except DispatchError:  # answered meanwhile
                continue
    return handed_back


def reassign(warning: Warning, to_user: User, chief: User, now: datetime | None = None) -> Offer:
    """A chief hands `warning` to `to_user`: open offers are withdrawn, the old owner told."""
    now = now or clock.now()
    if not warning.is_open:
        raise DispatchError("closed")
    if (
        to_user.station_id != warning.station_id
        or to_user.role not in ("officer", "auxiliary")
        or not to_user.active
    ):
        raise DispatchError("not_eligible")
    if warning.owner_id == to_user.id:
        raise DispatchError("already_theirs")
    # Officers whose offer is withdrawn are told too, so their phone stops asking.
    withdrawn = set(
        db.session.scalars(
            sa.select(Offer.officer_id).where(
                Offer.warning_id == warning.id,
                Offer.status == "pending",
                Offer.officer_id != to_user.id,
            )
        )
    )
    db.session.execute(
        sa.update(Offer)
        .where(Offer.warning_id == warning.id, Offer.status == "pending")
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
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
