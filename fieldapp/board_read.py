"""The chief's board, read: what each open warning looks like right now.

Lateness is measured against the station's `contact_target_s` (time from receipt to the first
contact attempt):
- "late": no attempt yet and the target has passed, or the first attempt came after it;
- "due": no attempt yet and more than half the target has gone;
- "on_time": otherwise.
"""

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from fieldapp import names
from fieldapp.extensions import db
from fieldapp.models import (
    OPEN_STATUSES,
    ContactAttempt,
    Event,
    Offer,
    Outcome,
    Station,
    User,
    Warning,
)


@dataclass(frozen=True)
class StationInfo:
    id: int
    name: str
    contact_target_s: int


@dataclass(frozen=True)
class OwnerInfo:
    id: int
    display_name: str
    badge_no: str | None = None

    @property
    def label(self) -> str:
        return names.person(self.display_name, self.badge_no)


@dataclass(frozen=True)
class Holder:
    """Who holds a pending offer of the warning, and until when."""

    officer: OwnerInfo
    expires_at: datetime | None
    left_s: float | None  # seconds left now; negative once the offer is overdue


@dataclass
class BoardRow:
    # A plain row, not an ORM object: a county board loads a thousand of them per refresh.
    warning: sa.Row
    station: StationInfo
    owner: OwnerInfo | None
    last_channel: str | None
    attempts: int
    reached: bool
    waited_s: float
    idle_s: float
    lateness: str  # on_time | due | late
    late: bool
    unsuccessful: bool
    defrauded_after: bool
    holders: list[Holder] = field(default_factory=list)


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    officer_id: int | None = None
    fraud_type: str | None = None
    station_id: int | None = None


def lateness(warning, target_s: int, now: datetime) -> str:
    """on_time / due / late against the station's time-to-first-contact target.

    `warning` is a Warning or any row with received_at and first_contact_at.
    """
    if warning.first_contact_at is not None:
        took = (warning.first_contact_at - warning.received_at).total_seconds()
        return "late" if took > target_s else "on_time"
    waited = (now - warning.received_at).total_seconds()
    if waited > target_s:
        return "late"
    if waited > target_s / 2:
        return "due"
    return "on_time"


def open_warnings(scope, filters: Filters, now: datetime) -> list[BoardRow]:
    """Open warnings within `scope` (a station_scope clause), unassigned first, oldest first.

    A fixed number of queries whatever the size: the warnings with station and owner, their
    attempts summarised per warning, the defrauded flags, and who holds the pending offers.
    """
    query = (
        sa.select(
            Warning.id,
            Warning.status,
            Warning.fraud_type,
            Warning.risk_level,
            Warning.station_id,
            Warning.owner_id,
            Warning.received_at,
            Warning.first_contact_at,
            Warning.last_action_at,
            Warning.lat,
            Warning.lon,
            Station.name.label("station_name"),
            Station.contact_target_s,
            User.display_name.label("owner_name"),
            User.badge_no.label("owner_badge"),
        )
        .join(Station, Station.id == Warning.station_id)
        .outerjoin(User, User.id == Warning.owner_id)
        .where(Warning.status.in_(OPEN_STATUSES), scope)
        .order_by((Warning.status == "unassigned").desc(), Warning.received_at, Warning.id)
    )
    if filters.status in OPEN_STATUSES:
        query = query.where(Warning.status == filters.status)
    if filters.officer_id is not None:
        query = query.where(Warning.owner_id == filters.officer_id)
    if filters.fraud_type:
        query = query.where(Warning.fraud_type == filters.fraud_type)
    if filters.station_id is not None:
        query = query.where(Warning.station_id == filters.station_id)
    warnings = db.session.execute(query).all()
    summary = _attempt_summary([w.id for w in warnings])
    defrauded = _defrauded([w.id for w in warnings])
    holders = pending_holders([w.id for w in warnings if w.status == "offered"], now)
    stations: dict[int, StationInfo] = {}
    owners: dict[int, OwnerInfo] = {}
    rows = []
    for w in warnings:
        count, reached, channel = summary.get(w.id, (0, False, None))
        station = stations.get(w.station_id)
        if station is None:
            station = stations[w.station_id] = StationInfo(
                w.station_id, w.station_name, w.contact_target_s
            )
        owner = None
        if w.owner_id is not None:
            owner = owners.get(w.owner_id)
            if owner is None:
                owner = owners[w.owner_id] = OwnerInfo(w.owner_id, w.owner_name, w.owner_badge)
        state = lateness(w, station.contact_target_s, now)
        rows.append(
            BoardRow(
                warning=w,
                station=station,
                owner=owner,
                last_channel=channel,
                attempts=count,
                reached=reached,
                waited_s=(now - w.received_at).total_seconds(),
                idle_s=(now - (w.last_action_at or w.received_at)).total_seconds(),
                lateness=state,
                late=state == "late",
                unsuccessful=count > 0 and not reached,
                defrauded_after=w.id in defrauded,
                holders=holders.get(w.id, []),
            )
        )
    return rows


def _chunks(ids: list[int], size: int = 900):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _attempt_summary(ids: list[int]) -> dict[int, tuple[int, bool, str | None]]:
    """Per warning: number of attempts, reached at least once, channel of the latest."""
    found: dict[int, tuple[int, bool, str | None]] = {}
    for chunk in _chunks(ids):
        rows = db.session.execute(
            sa.select(
                ContactAttempt.warning_id,
                ContactAttempt.channel,
                ContactAttempt.reached,
            )
            .where(ContactAttempt.warning_id.in_(chunk))
            .order_by(ContactAttempt.warning_id, ContactAttempt.attempted_at, ContactAttempt.id)
        )
        for wid, channel, reached in rows:
            count, any_reached, _last = found.get(wid, (0, False, None))
            found[wid] = (count + 1, any_reached or bool(reached), channel)
    return found


def pending_holders(ids: list[int], now: datetime) -> dict[int, list[Holder]]:
    """Per warning: the officers holding a pending offer, first offered first."""
    found: dict[int, list[Holder]] = {}
    for chunk in _chunks(ids):
        rows = db.session.execute(
            sa.select(
                Offer.warning_id,
                Offer.officer_id,
                Offer.expires_at,
                User.display_name,
                User.badge_no,
            )
            .join(User, User.id == Offer.officer_id)
            .where(Offer.warning_id.in_(chunk), Offer.status == "pending")
            .order_by(Offer.warning_id, Offer.id)
        )
        for wid, uid, expires_at, name, badge in rows:
            left = (expires_at - now).total_seconds() if expires_at is not None else None
            found.setdefault(wid, []).append(Holder(OwnerInfo(uid, name, badge), expires_at, left))
    return found


def _defrauded(ids: list[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(
            db.session.scalars(
                sa.select(Outcome.warning_id).where(
                    Outcome.warning_id.in_(chunk), Outcome.defrauded_after.is_(True)
                )
            )
        )
    return found


def station_officers(station_id: int) -> list[User]:
    """Who a chief may hand a warning to: the station's active field users."""
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.working_at([station_id]))
            .order_by(User.display_name, User.id)
        )
    )


def officers_by_station(station_ids: set[int]) -> dict[int, list[User]]:
    """Field users per station, for the reassign selects of a multi-station board."""
    result: dict[int, list[User]] = {sid: [] for sid in station_ids}
    if not station_ids:
        return result
    for user in db.session.scalars(
        sa.select(User).where(User.working_at(station_ids)).order_by(User.display_name, User.id)
    ):
        result[user.station_id].append(user)
    return result


def last_event_id() -> int:
    """The newest event id, where the live feed starts for a page rendered now."""
    return db.session.scalar(sa.select(sa.func.max(Event.id))) or 0


def counts(rows: list[BoardRow]) -> dict[str, int]:
    """The board's headline numbers: open, unassigned, offered, being worked, late, due."""
    found = dict.fromkeys(("open", "unassigned", "offered", "working", "late", "due"), 0)
    for row in rows:
        status = row.warning.status
        found["open"] += 1
        if status == "unassigned":
            found["unassigned"] += 1
        elif status in ("received", "offered"):
            found["offered"] += 1
        else:
            found["working"] += 1
        if row.lateness in ("late", "due"):
            found[row.lateness] += 1
    return found
