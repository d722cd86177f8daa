"""The reassign picker: for each officer a chief could hand a warning to, the facts that decide.

Duty status, distance to the resident (or to the station when no location is known), open
warnings (owned plus offers pending, as dispatch counts them) and the age of the position the
distance is measured from. On duty with a fresh position first, then on duty with an old or no
position, then off duty; nearest first within each.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fieldapp import geo, names, nearest
from fieldapp.board_read import station_officers
from fieldapp.extensions import db
from fieldapp.models import Offer, User, Warning


@dataclass(frozen=True)
class Choice:
    user: User
    label: str
    on_duty: bool
    distance_m: float | None
    open_warnings: int
    position_age_s: float | None
    fresh: bool  # position young enough for dispatch at this station
    current: bool  # owns the warning now
    holds_offer: bool  # has a pending offer of it


def choices(warning: Warning, now: datetime) -> list[Choice]:
    """Everyone of the warning's station who may take it, with their facts, best first."""
    people = station_officers(warning.station_id)
    loads = nearest.workloads([u.id for u in people])
    holding = set(
        db.session.scalars(
            sa.select(Offer.officer_id).where(
                Offer.warning_id == warning.id, Offer.status == "pending"
            )
        )
    )
    lat, lon = nearest.target_point(warning, warning.station)
    stale_s = warning.station.position_stale_s
    found = []
    for user in people:
        placed = user.lat is not None and user.lon is not None
        age = (now - user.position_at).total_seconds() if placed and user.position_at else None
        found.append(
            Choice(
                user=user,
                label=names.of(user),
                on_duty=user.duty_status == "on_duty",
                distance_m=geo.distance_m(lat, lon, user.lat, user.lon) if placed else None,
                open_warnings=loads.get(user.id, 0),
                position_age_s=age,
                fresh=age is not None and age <= stale_s,
                current=user.id == warning.owner_id,
                holds_offer=user.id in holding,
            )
        )
    return sorted(
        found,
        key=lambda c: (
            not c.on_duty,
            not c.fresh,
            c.distance_m is None,
            c.distance_m or 0.0,
            c.label,
            c.user.id,
        ),
    )
