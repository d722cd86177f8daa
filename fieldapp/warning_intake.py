"""Creating warnings, from the centre's API, a chief's form or a CSV batch."""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from fieldapp import clock, dispatch, events, geo
from fieldapp.api.schemas import WarningIn
from fieldapp.extensions import db
from fieldapp.models import IntakeToken, OutboxMessage, Station, User, Warning


class IntakeError(Exception):
    """Input that names something that does not exist or is not allowed: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


@dataclass
class IntakeResult:
    warning: Warning
    created: bool
    conflict: bool = False
    push: OutboxMessage | None = None  # the first offer's push row, for express.prepare


def content_hash(data: WarningIn) -> str:
    """Fingerprint of what the centre sent, to tell a true repeat from a changed one."""
    body = json.dumps(data.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def resolve_station(data: WarningIn, token: IntakeToken | None) -> Station:
    """The station of jurisdiction: named, else the token's, else the nearest to the person."""
    if data.station_code:
        station = db.session.scalar(sa.select(Station).where(Station.code == data.station_code))
        if station is None:
            raise IntakeError({"station_code": _("Unknown station.")})
        if token is not None and token.station_id and token.station_id != station.id:
            raise IntakeError(
                {"station_code": _("This token may only send warnings for its own station.")}
            )
        return station
    if token is not None and token.station_id:
        return token.station
    stations = list(db.session.scalars(sa.select(Station)))
    if not stations:
        raise IntakeError({"station_code": _("No station exists yet.")})
    lat, lon = data.location.lat, data.location.lon
    return min(stations, key=lambda s: (geo.distance_m(lat, lon, s.lat, s.lon), s.id))


def build_warning(data: WarningIn, station: Station, **extra) -> Warning:
    """A Warning row from validated input (not yet added to the session)."""
    now = clock.now()
    loc = data.location
    return Warning(
        source_ref=data.source_ref,
        person_name=data.person_name,
        person_phone=data.person_phone,
        fraud_type=data.fraud_type,
        risk_level=data.risk_level,
        amount_at_risk=data.amount_at_risk,
        lat=loc.lat if loc else None,
        lon=loc.lon if loc else None,
        accuracy_m=loc.accuracy_m if loc else None,
        station_id=station.id,
        address=data.address or None,
        suspect_account=data.suspect_account or None,
        issued_at=data.issued_at,
        note=data.note or None,
        content_hash=content_hash(data),
        status="received",
        received_at=now,
        last_action_at=now,
        **extra,
    )


def _existing(token: IntakeToken, source_ref: str) -> Warning | None:
    return db.session.scalar(
        sa.select(Warning).where(Warning.token_id == token.id, Warning.source_ref == source_ref)
    )


def _repeat(token: IntakeToken, data: WarningIn) -> IntakeResult | None:
    existing = _existing(token, data.source_ref)
    if existing is None:
        return None
    return IntakeResult(
        existing, created=False, conflict=existing.content_hash != content_hash(data)
    )


def receive(data: WarningIn, token: IntakeToken) -> IntakeResult:
    """Store and dispatch a warning from the centre; a repeated source_ref creates nothing.

    The unique (token, source_ref) constraint finds repeats: a new warning, the common case,
    costs no look-up first, and two identical requests racing each other cannot both insert.
    """
    station = resolve_station(data, token)
    warning = build_warning(data, station, token_id=token.id)
    offer = dispatch.plan_first(warning, station, warning.received_at)
    db.session.add(warning)
    try:
        db.session.flush()
    except IntegrityError:
        # A repeat, or another request with the same source_ref won the race. Nothing else
        # was written in this transaction yet, so rolling it back loses nothing.
        db.session.rollback()
        repeat = _repeat(token, data)
        if repeat is None:
            raise
        return repeat
    # Once a minute is precise enough to see a token in use, and spares a write per warning.
    if token.last_used_at is None or warning.received_at - token.last_used_at > timedelta(
        minutes=1
    ):
        token.last_used_at = warning.received_at
    events.record(
        "received",
        warning=warning,
        source="api",
        token_id=token.id,
        fraud_type=warning.fraud_type,
        risk_level=warning.risk_level,
    )
    push = dispatch.announce_first(warning, offer, warning.received_at)
    return IntakeResult(warning, created=True, push=push)


def enter_by_hand(data: WarningIn, chief: User, source: str = "manual") -> IntakeResult:
    """A chief types a warning in (e.g. from a phone call); it is dispatched like any other."""
    station = resolve_station(data, None)
    if not chief.is_admin and station.id != chief.station_id:
        raise IntakeError({"station_code": _("You can only enter warnings for your own station.")})
    warning = build_warning(data, station, created_by_id=chief.id)
    offer = dispatch.plan_first(warning, station, warning.received_at)
    db.session.add(warning)
    db.session.flush()
    events.record(
        "received",
        warning=warning,
        actor=chief,
        source=source,
        fraud_type=warning.fraud_type,
        risk_level=warning.risk_level,
    )
    push = dispatch.announce_first(warning, offer, warning.received_at)
    return IntakeResult(warning, created=True, push=push)
