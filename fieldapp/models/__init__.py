"""All tables; import models from here."""

from fieldapp.models.auth import LoginThrottle, UserSession
from fieldapp.models.base import Base, UTCDateTime, utcnow
from fieldapp.models.delivery import (
    OUTBOX_KINDS,
    OutboxMessage,
    PushSubscription,
    WorkerHeartbeat,
)
from fieldapp.models.events import ClientMutation, Event
from fieldapp.models.people import DUTY_STATUSES, FIELD_ROLES, ROLES, IntakeToken, Station, User
from fieldapp.models.warnings import (
    CHANNELS,
    FRAUD_TYPES,
    OFFER_STATUSES,
    OPEN_STATUSES,
    OUTCOMES,
    RISK_LEVELS,
    WARNING_STATUSES,
    Confirmation,
    ContactAttempt,
    HelpRequest,
    Offer,
    Outcome,
    Participant,
    TalkingPoints,
    Warning,
)

__all__ = [
    "Base",
    "UTCDateTime",
    "utcnow",
    "OUTBOX_KINDS",
    "OutboxMessage",
    "PushSubscription",
    "WorkerHeartbeat",
    "LoginThrottle",
    "UserSession",
    "ClientMutation",
    "Event",
    "DUTY_STATUSES",
    "FIELD_ROLES",
    "ROLES",
    "IntakeToken",
    "Station",
    "User",
    "CHANNELS",
    "FRAUD_TYPES",
    "OFFER_STATUSES",
    "OPEN_STATUSES",
    "OUTCOMES",
    "RISK_LEVELS",
    "WARNING_STATUSES",
    "Confirmation",
    "ContactAttempt",
    "HelpRequest",
    "Offer",
    "Outcome",
    "Participant",
    "TalkingPoints",
    "Warning",
]
