"""Creating warnings, from the centre's API, a chief's form or a CSV batch.

`WarningIn` is the one description of a warning's input: the API validates its JSON with it,
the form and the CSV their rows, and the OpenAPI document is generated from it.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import IntegrityError

from fieldapp import clock, dispatch, events, geo
from fieldapp.extensions import db
from fieldapp.models import (
    FRAUD_TYPES,
    RISK_LEVELS,
    IntakeToken,
    OutboxMessage,
    Station,
    User,
    Warning,
)
from fieldapp.refusals import Refusal
from fieldapp.validation import Instant, Money, Phone, text

FraudType = Literal[FRAUD_TYPES]  # type: ignore[valid-type]
RiskLevel = Literal[RISK_LEVELS]  # type: ignore[valid-type]


class Location(BaseModel):
    """Where the resident is believed to be (WGS-84)."""

    model_config = ConfigDict(extra="ignore")

    lat: Annotated[float, Field(ge=-90, le=90, description="latitude, degrees")]
    lon: Annotated[float, Field(ge=-180, le=180, description="longitude, degrees")]
    accuracy_m: Annotated[float | None, Field(ge=0, le=1_000_000)] = None


class WarningIn(BaseModel):
    """An early warning sent by the anti-fraud centre."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    source_ref: text(64, 1, description="the centre's own id")
    person_name: text(64, 1)
    person_phone: Annotated[
        Phone,
        Field(description="mainland mobile (11 digits, optional +86) or other dialable number"),
    ]
    fraud_type: FraudType
    risk_level: RiskLevel = "high"
    amount_at_risk: Annotated[Money | None, Field(description="yuan")] = None
    location: Location | None = None
    station_code: text(32, 1) | None = None
    address: text(200) | None = None
    suspect_account: text(64) | None = None
    issued_at: Annotated[
        Instant | None, Field(description="RFC 3339, when the centre raised it")
    ] = None
    note: text(500) | None = None

    @model_validator(mode="after")
    def _where(self) -> "WarningIn":
        if self.location is None and not self.station_code:
            raise PydanticCustomError("location_or_station", "location or station_code required")
        return self


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
            raise Refusal("unknown_station")
        if token is not None and token.station_id and token.station_id != station.id:
            raise Refusal("token_station")
        return station
    if token is not None and token.station_id:
        return token.station
    stations = list(db.session.scalars(sa.select(Station)))
    if not stations:
        raise Refusal("no_station")
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
    offers = dispatch.plan_first(warning, station, warning.received_at)
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
    push = dispatch.announce_first(warning, offers, warning.received_at)
    return IntakeResult(warning, created=True, push=push)


def station_for(data: WarningIn, chief: User) -> Station:
    """The station a chief's warning goes to; a chief may only enter for their own station."""
    station = resolve_station(data, None)
    if not chief.is_admin and station.id != chief.station_id:
        raise Refusal("own_station_only")
    return station


def manual_ref_taken(station: Station, source_ref: str) -> bool:
    """Whether a warning entered by hand at `station` already has this source_ref.

    Only within the station: a look-up across stations would tell a chief whether a
    reference exists elsewhere.
    """
    found = db.session.scalar(
        sa.select(Warning.id).where(
            Warning.token_id.is_(None),
            Warning.station_id == station.id,
            Warning.source_ref == source_ref,
        )
    )
    return found is not None


def enter_by_hand(data: WarningIn, chief: User, source: str = "manual") -> IntakeResult:
    """A chief types a warning in (e.g. from a phone call); it is dispatched like any other."""
    station = station_for(data, chief)
    if manual_ref_taken(station, data.source_ref):
        raise Refusal("source_ref_taken")
    warning = build_warning(data, station, created_by_id=chief.id)
    offers = dispatch.plan_first(warning, station, warning.received_at)
    db.session.add(warning)
    try:
        db.session.flush()
    except IntegrityError:
        # Another chief entered the same reference at the same moment (unique per station).
        db.session.rollback()
        raise Refusal("source_ref_taken") from None
    events.record(
        "received",
        warning=warning,
        actor=chief,
        source=source,
        fraud_type=warning.fraud_type,
        risk_level=warning.risk_level,
    )
    push = dispatch.announce_first(warning, offers, warning.received_at)
    return IntakeResult(warning, created=True, push=push)
