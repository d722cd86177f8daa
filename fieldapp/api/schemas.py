"""The intake schema: one pydantic model validates requests and generates the OpenAPI document."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fieldapp.models import FRAUD_TYPES, RISK_LEVELS

FraudType = Literal[FRAUD_TYPES]  # type: ignore[valid-type]
RiskLevel = Literal[RISK_LEVELS]  # type: ignore[valid-type]

_MAINLAND_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")
_DIALABLE = re.compile(r"^\+?\d{3,15}$")
_SEPARATORS = re.compile(r"[\s\-()]")


def normalise_phone(raw: str) -> str:
    """A mainland mobile as its 11 digits; any other dialable number as digits with an optional +.

    Raises PydanticCustomError('phone_invalid') for anything else.
    """
    compact = _SEPARATORS.sub("", raw)
    mobile = _MAINLAND_MOBILE.match(compact)
    if mobile:
        return mobile.group(1)
    if _DIALABLE.match(compact):
        return compact
    raise PydanticCustomError("phone_invalid", "not a dialable phone number")


class Location(BaseModel):
    """Where the resident is believed to be (WGS-84)."""

    model_config = ConfigDict(extra="ignore")

    lat: Annotated[float, Field(ge=-90, le=90, description="latitude, degrees")]
    lon: Annotated[float, Field(ge=-180, le=180, description="longitude, degrees")]
    accuracy_m: Annotated[float | None, Field(ge=0, le=1_000_000)] = None


class WarningIn(BaseModel):
    """An early warning sent by the anti-fraud centre."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    source_ref: Annotated[str, Field(min_length=1, max_length=64, description="the centre's id")]
    person_name: Annotated[str, Field(min_length=1, max_length=64)]
    person_phone: Annotated[
        str,
        Field(
            min_length=3,
            max_length=32,
            description="mainland mobile (11 digits, optional +86) or other dialable number",
        ),
    ]
    fraud_type: FraudType
    risk_level: RiskLevel = "high"
    amount_at_risk: Annotated[
        Decimal | None, Field(ge=0, le=Decimal("1e11"), decimal_places=2, description="yuan")
    ] = None
    location: Location | None = None
    station_code: Annotated[str | None, Field(min_length=1, max_length=32)] = None
    address: Annotated[str | None, Field(max_length=200)] = None
    suspect_account: Annotated[str | None, Field(max_length=64)] = None
    issued_at: Annotated[AwareDatetime | None, Field(description="RFC 3339")] = None
    note: Annotated[str | None, Field(max_length=500)] = None

    @field_validator("person_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalise_phone(value)

    @model_validator(mode="after")
    def _where(self) -> "WarningIn":
        if self.location is None and not self.station_code:
            raise PydanticCustomError("location_or_station", "location or station_code required")
        return self


class WarningCreated(BaseModel):
    id: int
    status: str
    url: str
    duplicate: bool = False
    conflict: bool = False
    message: str | None = None


class ErrorBody(BaseModel):
    errors: dict[str, str]


class AttemptOut(BaseModel):
    channel: str
    reached: bool
    attempted_at: datetime
    confirmed: bool


class OutcomeOut(BaseModel):
    outcome: str
    recorded_at: datetime
    app_installed: bool
    loss_amount: Decimal | None = None
    defrauded_after: bool = False
    later_loss_amount: Decimal | None = None


class OfficerOut(BaseModel):
    id: int
    display_name: str


class WarningFeedback(BaseModel):
    id: int
    source_ref: str
    status: str
    station_code: str
    received_at: datetime
    accepted_at: datetime | None = None
    first_contact_at: datetime | None = None
    resolved_at: datetime | None = None
    officer: OfficerOut | None = None
    attempts: list[AttemptOut]
    outcome: OutcomeOut | None = None
