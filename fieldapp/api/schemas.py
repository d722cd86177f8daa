"""The API's answers: the shapes it returns, for the OpenAPI document.

What the API accepts is described by the domain's own models (`warning_intake.WarningIn`,
`sync.SyncIn`, ...), which validate the input too.
"""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


class WarningCreated(BaseModel):
    id: int
    status: str
    url: str
    duplicate: bool = False
    conflict: bool = False
    message: str | None = None


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
