"""Who carried the work: offers, accepts, declines, timeouts and taken offers per officer.

Workload (per officer, over offers on warnings received in the period):
- offers: every offer made to them, parallel ones included, whatever became of it;
- accepts / declines: offers they accepted / turned down (going off duty hands pending offers
  back as declines);
- timeouts: offers that expired without an answer;
- taken: parallel offers closed because a colleague accepted first. These are neither a
  decline nor a timeout: the officer was not given the time to answer. Offers withdrawn by a
  chief's reassignment (cancelled) are none of these either.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import OPEN_STATUSES, Offer, Station, User, Warning
from fieldapp.periods import Period, received_in


def people(user_ids) -> dict[int, tuple[str, str | None, int]]:
    """Per user id: display name, badge number, station."""
    if not user_ids:
        return {}
    rows = db.session.execute(
        sa.select(User.id, User.display_name, User.badge_no, User.station_id).where(
            User.id.in_(list(user_ids))
        )
    )
    return {uid: (name, badge, station) for uid, name, badge, station in rows}


@dataclass
class Workload:
    user_id: int
    name: str
    badge_no: str | None = None
    station_id: int | None = None
    offers: int = 0
    accepts: int = 0
    declines: int = 0
    open_now: int = 0
    timeouts: int = 0
    taken: int = 0  # parallel offers a colleague accepted first (module docstring)


def workload(period: Period, station_id: int | None = None) -> list[Workload]:
    """Offers, accepts, declines, timeouts and offers taken by a colleague on warnings
    received in `period` (definitions in the module docstring), and open warnings now.

    Every field user of the station is listed, even with nothing, so an idle officer shows.
    Sorted by station, then busiest first, so a county list reads station by station.
    """
    users = sa.select(User.id, User.display_name, User.badge_no, User.station_id).where(
        User.role.in_(("officer", "auxiliary")), User.active.is_(True)
    )
    if station_id is not None:
        users = users.where(User.station_id == station_id)
    result = {
        uid: Workload(uid, name, badge, sid) for uid, name, badge, sid in db.session.execute(users)
    }
    offers = db.session.execute(
        sa.select(
            Offer.officer_id,
            sa.func.count(Offer.id),
            sa.func.sum(sa.case((Offer.status == "accepted", 1), else_=0)),
            sa.func.sum(sa.case((Offer.status == "declined", 1), else_=0)),
            sa.func.sum(sa.case((Offer.status == "expired", 1), else_=0)),
            sa.func.sum(sa.case((Offer.status == "taken", 1), else_=0)),
        )
        .join(Warning, Warning.id == Offer.warning_id)
        .where(*received_in(period, station_id))
        .group_by(Offer.officer_id)
    )
    for uid, n, accepted, declined, expired, taken in offers:
        row = result.setdefault(uid, Workload(uid, ""))
        row.offers, row.accepts, row.declines = n, int(accepted or 0), int(declined or 0)
        row.timeouts, row.taken = int(expired or 0), int(taken or 0)
    open_query = (
        sa.select(Warning.owner_id, sa.func.count())
        .where(Warning.status.in_(OPEN_STATUSES), Warning.owner_id.is_not(None))
        .group_by(Warning.owner_id)
    )
    if station_id is not None:
        open_query = open_query.where(Warning.station_id == station_id)
    for uid, n in db.session.execute(open_query):
        result.setdefault(uid, Workload(uid, "")).open_now = n
    missing = [uid for uid, row in result.items() if not row.name]
    for uid, (name, badge, sid) in people(missing).items():
        result[uid].name, result[uid].badge_no, result[uid].station_id = name, badge, sid
    codes = dict(db.session.execute(sa.select(Station.id, Station.code)).all())
    return sorted(
        result.values(),
        key=lambda w: (codes.get(w.station_id, ""), -w.offers, w.name, w.user_id),
    )
