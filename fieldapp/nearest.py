"""Choosing the officer to ask: the nearest on duty with a fresh position, ties to the lighter load.

This sits between every new warning and the phone that buzzes for it, so its query is built
once per shape with bound parameters (bench/bench_nearest.py, bench/bench_push.py).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa

from fieldapp import geo
from fieldapp.extensions import db
from fieldapp.models import OPEN_STATUSES, Offer, Station, User, Warning

# Officers this close to the nearest one count as equally near; the lighter workload wins.
TIE_M = 50.0
# A bounding box (index range scan) first, then the whole station. A station's officers are
# tens, so the whole-station query is cheap; the box keeps a station of thousands fast too
# (bench/bench_nearest.py). One box, not a ladder: in a rural county a small box is often
# empty, and every extra rung is another round trip before the phone buzzes.
SEARCH_RADII_M = (10_000.0, None)
NEAREST_LIMIT = 8


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
