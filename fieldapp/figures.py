"""The desk's figures over a period of Asia/Shanghai dates, per station or county-wide.

Every figure counts the warnings *received* in the period [start, end) (local dates, end
exclusive), so the figures of one period always add up with each other. `station_id=None`
means the whole county; callers decide who may ask for that (admins only).

Counting is done by SQL aggregates; percentiles are computed in Python over the one column
they need (durations), so SQLite and PostgreSQL give the same answers.

Definitions (also shown on the page):
- contact rate: warnings whose person was reached at least once ÷ warnings received;
- persuasion rate: outcomes "persuaded" ÷ outcomes other than "not fraud";
- defrauded after the warning: outcomes flagged defrauded_after ÷ warnings with an outcome;
- losses avoided: amount at risk of persuaded warnings; reported losses: loss recorded with
  the outcome plus losses reported later (amended outcomes);
- time to accept / first contact: from received_at, over the warnings that got there.
Workload (offers, accepts, declines, timeouts, taken per officer): fieldapp/workload.py.
"""

from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import (
    CHANNELS,
    ContactAttempt,
    Outcome,
    Station,
    Warning,
)
from fieldapp.periods import Period, received_in
from fieldapp.workload import Workload, people, workload

CENT = Decimal("0.01")


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def _reached_exists():
    return (
        sa.select(ContactAttempt.id)
        .where(ContactAttempt.warning_id == Warning.id, ContactAttempt.reached.is_(True))
        .exists()
    )


@dataclass
class Totals:
    received: int = 0
    reached: int = 0
    outcomes: int = 0
    persuaded: int = 0
    fraud_outcomes: int = 0  # outcomes other than not_fraud
    app_installs: int = 0
    defrauded_after: int = 0
    losses_avoided: Decimal = Decimal("0.00")
    reported_losses: Decimal = Decimal("0.00")

    @property
    def contact_rate(self) -> float | None:
        return ratio(self.reached, self.received)

    @property
    def persuasion_rate(self) -> float | None:
        return ratio(self.persuaded, self.fraud_outcomes)

    @property
    def defrauded_after_rate(self) -> float | None:
        return ratio(self.defrauded_after, self.outcomes)


@dataclass
class Breakdown:
    key: str | int | None
    label: str = ""
    badge_no: str | None = None  # per officer: tells namesakes apart
    station_id: int | None = None  # per officer: whose station they work at
    received: int = 0
    reached: int = 0
    persuaded: int = 0
    fraud_outcomes: int = 0

    @property
    def persuasion_rate(self) -> float | None:
        return ratio(self.persuaded, self.fraud_outcomes)

    @property
    def contact_rate(self) -> float | None:
        return ratio(self.reached, self.received)


@dataclass
class Group:
    """One (station, scam type, owner) cell of a period: every count the figures add up."""

    station_id: int
    fraud_type: str
    owner_id: int | None
    received: int
    reached: int
    outcomes: int
    persuaded: int
    fraud_outcomes: int
    app_installs: int
    defrauded_after: int
    losses_avoided: Decimal
    reported_losses: Decimal


def groups(period: Period, station_id: int | None = None) -> list[Group]:
    """The period's warnings counted per station, scam type and owner, in one query.

    A county month has at most a few hundred such cells, so every total, breakdown and
    ranking is summed from them in Python instead of re-scanning the warnings per figure.
    """
    persuaded = Outcome.outcome == "persuaded"
    rows = db.session.execute(
        sa.select(
            Warning.station_id,
            Warning.fraud_type,
            Warning.owner_id,
            sa.func.count(Warning.id),
            sa.func.sum(sa.case((_reached_exists(), 1), else_=0)),
            sa.func.count(Outcome.id),
            sa.func.sum(sa.case((persuaded, 1), else_=0)),
            sa.func.sum(sa.case((Outcome.outcome != "not_fraud", 1), else_=0)),
            sa.func.sum(sa.case((Outcome.app_installed.is_(True), 1), else_=0)),
            sa.func.sum(sa.case((Outcome.defrauded_after.is_(True), 1), else_=0)),
            sa.func.sum(sa.case((persuaded, Warning.amount_at_risk), else_=0)),
            sa.func.sum(sa.func.coalesce(Outcome.loss_amount, 0)),
            sa.func.sum(sa.func.coalesce(Outcome.later_loss_amount, 0)),
        )
        .select_from(Warning)
        .outerjoin(Outcome, Outcome.warning_id == Warning.id)
        .where(*received_in(period, station_id))
        .group_by(Warning.station_id, Warning.fraud_type, Warning.owner_id)
    ).all()
    return [
        Group(
            station_id=r[0],
            fraud_type=r[1],
            owner_id=r[2],
            received=r[3] or 0,
            reached=int(r[4] or 0),
            outcomes=r[5] or 0,
            persuaded=int(r[6] or 0),
            fraud_outcomes=int(r[7] or 0),
            app_installs=int(r[8] or 0),
            defrauded_after=int(r[9] or 0),
            losses_avoided=_money(r[10]),
            reported_losses=_money(r[11]) + _money(r[12]),
        )
        for r in rows
    ]


def _sum_totals(cells: list[Group]) -> Totals:
    t = Totals()
    for g in cells:
        t.received += g.received
        t.reached += g.reached
        t.outcomes += g.outcomes
        t.persuaded += g.persuaded
        t.fraud_outcomes += g.fraud_outcomes
        t.app_installs += g.app_installs
        t.defrauded_after += g.defrauded_after
        t.losses_avoided += g.losses_avoided
        t.reported_losses += g.reported_losses
    return t


def _sum_by(cells: list[Group], key) -> list[Breakdown]:
    found: dict = {}
    for g in cells:
        k = key(g)
        b = found.get(k)
        if b is None:
            b = found[k] = Breakdown(k)
        b.received += g.received
        b.reached += g.reached
        b.persuaded += g.persuaded
        b.fraud_outcomes += g.fraud_outcomes
    return list(found.values())


def totals(period: Period, station_id: int | None = None, cells=None) -> Totals:
    """Counts, rates and money over the warnings received in `period`."""
    return _sum_totals(groups(period, station_id) if cells is None else cells)


@dataclass
class Timing:
    """Seconds from receipt; None when no warning got there."""

    accept_median: float | None = None
    accept_p90: float | None = None
    contact_median: float | None = None
    contact_p90: float | None = None
    accepted: int = 0
    contacted: int = 0


def timing(period: Period, station_id: int | None = None) -> Timing:
    """Median and 90th percentile of the time to accept and to first contact."""
    rows = db.session.execute(
        sa.select(Warning.received_at, Warning.accepted_at, Warning.first_contact_at).where(
            *received_in(period, station_id),
            sa.or_(Warning.accepted_at.is_not(None), Warning.first_contact_at.is_not(None)),
        )
    ).all()
    to_accept = [(a - r).total_seconds() for r, a, _c in rows if a is not None]
    to_contact = [(c - r).total_seconds() for r, _a, c in rows if c is not None]
    return Timing(
        accept_median=percentile(to_accept, 0.5),
        accept_p90=percentile(to_accept, 0.9),
        contact_median=percentile(to_contact, 0.5),
        contact_p90=percentile(to_contact, 0.9),
        accepted=len(to_accept),
        contacted=len(to_contact),
    )


def channels(period: Period, station_id: int | None = None) -> dict[str, int]:
    """Per channel: warnings whose person was reached at least once through it."""
    counts = dict.fromkeys(CHANNELS, 0)
    rows = db.session.execute(
        sa.select(ContactAttempt.channel, sa.func.count(sa.distinct(ContactAttempt.warning_id)))
        .join(Warning, Warning.id == ContactAttempt.warning_id)
        .where(ContactAttempt.reached.is_(True), *received_in(period, station_id))
        .group_by(ContactAttempt.channel)
    )
    for channel, n in rows:
        counts[channel] = n
    return counts


def by_fraud_type(period: Period, station_id: int | None = None, cells=None) -> list[Breakdown]:
    """Received, reached and persuaded per scam type, most received first."""
    cells = groups(period, station_id) if cells is None else cells
    found = _sum_by(cells, lambda g: g.fraud_type)
    return sorted(found, key=lambda b: (-b.received, str(b.key)))


def by_officer(period: Period, station_id: int | None = None, cells=None) -> list[Breakdown]:
    """Per owning officer (None: never owned), labelled with the officer's display name."""
    cells = groups(period, station_id) if cells is None else cells
    found = _sum_by(cells, lambda g: g.owner_id)
    known = people([b.key for b in found if b.key is not None])
    for b in found:
        b.label, b.badge_no, b.station_id = known.get(b.key, ("", None, None))
    return sorted(found, key=lambda b: (b.key is None, -b.received, b.label))


def station_ranking(period: Period, cells=None) -> list[Breakdown]:
    """Every station by persuasion rate, best first (stations with no outcome last)."""
    cells = groups(period, None) if cells is None else cells
    found = {b.key: b for b in _sum_by(cells, lambda g: g.station_id)}
    for sid, code, name in db.session.execute(sa.select(Station.id, Station.code, Station.name)):
        found.setdefault(sid, Breakdown(sid)).label = f"{name} ({code})"
    return sorted(
        found.values(),
        key=lambda b: (b.persuasion_rate is None, -(b.persuasion_rate or 0), -b.received, b.label),
    )


@dataclass
class Figures:
    """Everything the figures page shows for one period, and the same period last year."""

    period: Period
    station_id: int | None
    totals: Totals
    timing: Timing
    channels: dict[str, int]
    fraud_types: list[Breakdown]
    officers: list[Breakdown]
    workload: list[Workload]
    ranking: list[Breakdown] = field(default_factory=list)
    last_year: "Figures | None" = None


def compute(period: Period, station_id: int | None = None, *, compare: bool = True) -> Figures:
    """All figures for `period` (and, when `compare`, for the same period last year)."""
    cells = groups(period, station_id)
    result = Figures(
        period=period,
        station_id=station_id,
        totals=totals(period, station_id, cells),
        timing=timing(period, station_id),
        channels=channels(period, station_id),
        fraud_types=by_fraud_type(period, station_id, cells),
        officers=by_officer(period, station_id, cells),
        workload=workload(period, station_id),
        ranking=station_ranking(period, cells) if station_id is None else [],
    )
    if compare:
        last = period.last_year()
        last_cells = groups(last, station_id)
        result.last_year = Figures(
            period=last,
            station_id=station_id,
            totals=totals(last, station_id, last_cells),
            timing=timing(last, station_id),
            channels=channels(last, station_id),
            fraud_types=by_fraud_type(last, station_id, last_cells),
            officers=[],
            workload=[],
        )
    return result
