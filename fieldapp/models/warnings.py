"""Warnings and everything done about them: offers, contact attempts, confirmations, outcomes."""

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.models.base import Base, utcnow
from fieldapp.models.people import IntakeToken, Station, User

FRAUD_TYPES = (
    "online_shopping_refund",
    "fake_loan",
    "impersonating_boss",
    "impersonating_police",
    "order_brushing",
    "romance_investment",
    "other",
)
RISK_LEVELS = ("high", "medium", "low")
WARNING_STATUSES = ("received", "offered", "accepted", "in_contact", "resolved", "unassigned")
OPEN_STATUSES = ("received", "offered", "accepted", "in_contact", "unassigned")
# taken: a parallel offer closed because a colleague accepted first (neither a decline nor a
# timeout); its closing time is in cancelled_at.
OFFER_STATUSES = ("pending", "accepted", "declined", "expired", "cancelled", "taken")
CHANNELS = ("phone", "wechat_video", "visit", "other")
OUTCOMES = ("persuaded", "already_lost", "not_fraud", "unreachable", "refused")

Money = sa.Numeric(14, 2)


class Warning(Base):
    __tablename__ = "warnings"
    __table_args__ = (
        sa.UniqueConstraint("token_id", "source_ref", name="uq_warnings_token_source_ref"),
        # Entered by hand (no token): a source_ref is unique within its station only.
        sa.Index(
            "uq_warnings_manual_station_source_ref",
            "station_id",
            "source_ref",
            unique=True,
            sqlite_where=sa.text("token_id IS NULL"),
            postgresql_where=sa.text("token_id IS NULL"),
        ),
        sa.Index("ix_warnings_station_status", "station_id", "status"),
        sa.Index("ix_warnings_station_received", "station_id", "received_at"),
        sa.Index("ix_warnings_person_phone", "person_phone"),
        sa.Index("ix_warnings_owner_status", "owner_id", "status"),
        # The county board (open warnings of every station) and county figures by period.
        sa.Index("ix_warnings_status_received", "status", "received_at"),
        sa.Index("ix_warnings_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null when a chief entered it by hand.
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("intake_tokens.id"))
    source_ref: Mapped[str] = mapped_column(sa.String(64))
    person_name: Mapped[str] = mapped_column(sa.String(64))
    person_phone: Mapped[str] = mapped_column(sa.String(32))
    fraud_type: Mapped[str] = mapped_column(sa.String(32))
    risk_level: Mapped[str] = mapped_column(sa.String(8), default="high")
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Money)
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    station_id: Mapped[int] = mapped_column(sa.ForeignKey("stations.id"))
    address: Mapped[str | None] = mapped_column(sa.String(200))
    suspect_account: Mapped[str | None] = mapped_column(sa.String(64))
    issued_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(sa.String(500))
    # Fingerprint of the intake body, to tell a true repeat from a conflicting one.
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))

    status: Mapped[str] = mapped_column(sa.String(16), default="received")
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    first_contact_at: Mapped[datetime | None]
    last_action_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # Set by `flask retention` once the personal fields have been wiped.
    anonymised_at: Mapped[datetime | None]

    station: Mapped[Station] = relationship()
    token: Mapped[IntakeToken | None] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    offers: Mapped[list["Offer"]] = relationship(
        back_populates="warning", order_by="Offer.id", foreign_keys="Offer.warning_id"
    )
    attempts: Mapped[list["ContactAttempt"]] = relationship(
        back_populates="warning", order_by="ContactAttempt.attempted_at"
    )
    outcome: Mapped["Outcome | None"] = relationship(back_populates="warning", uselist=False)
    participants: Mapped[list["Participant"]] = relationship(back_populates="warning")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Offer(Base):
    """One officer asked to take one warning; the chain of offers is the dispatch history."""

    __tablename__ = "offers"
    __table_args__ = (
        sa.Index("ix_offers_officer_status", "officer_id", "status"),
        sa.Index("ix_offers_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("warnings.id"), index=True)
    officer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    rank: Mapped[int] = mapped_column(default=1)
    distance_m: Mapped[float | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    # How this offer came about: dispatch, reassign (by a chief), help (joined a help request).
    reason: Mapped[str] = mapped_column(sa.String(16), default="dispatch")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]  # push service accepted the message
    delivered_at: Mapped[datetime | None]  # the device's service worker sent a receipt
    fallback_at: Mapped[datetime | None]  # SMS fallback sent
    expires_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    warning: Mapped[Warning] = relationship(back_populates="offers", foreign_keys=[warning_id])
    officer: Mapped[User] = relationship()


class Participant(Base):
    """Someone working a warning besides its owner (joined through a help request)."""

    __tablename__ = "participants"
    __table_args__ = (sa.UniqueConstraint("warning_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("warnings.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    warning: Mapped[Warning] = relationship(back_populates="participants")
    user: Mapped[User] = relationship()


class HelpRequest(Base):
    """A call for a colleague to join a warning: joining needs an open one.

    Either the officer working it asks every colleague on duty (`invited_user_id` is None), or
    a chief asks one named officer. It closes when the warning closes or is reassigned, and a
    chief's request also when its officer joins.
    """

    __tablename__ = "help_requests"
    __table_args__ = (sa.Index("ix_help_requests_warning_closed", "warning_id", "closed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("warnings.id"))
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    invited_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]


class ContactAttempt(Base):
    __tablename__ = "contact_attempts"
    # "Was this person reached?" per warning, answered from the index alone (figures).
    __table_args__ = (sa.Index("ix_contact_attempts_warning_reached", "warning_id", "reached"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("warnings.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    reached: Mapped[bool]
    attempted_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    warning: Mapped[Warning] = relationship(back_populates="attempts")
    user: Mapped[User] = relationship()
    confirmations: Mapped[list["Confirmation"]] = relationship(back_populates="attempt")


class Confirmation(Base):
    """A second person vouches that a contact really happened."""

    __tablename__ = "confirmations"
    __table_args__ = (sa.UniqueConstraint("attempt_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    attempt_id: Mapped[int] = mapped_column(sa.ForeignKey("contact_attempts.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    confirmed_at: Mapped[datetime] = mapped_column(default=utcnow)

    attempt: Mapped[ContactAttempt] = relationship(back_populates="confirmations")
    user: Mapped[User] = relationship()


class Outcome(Base):
    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("warnings.id"), unique=True)
    client_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    loss_amount: Mapped[Decimal | None] = mapped_column(Money)
    app_installed: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    follow_up_at: Mapped[datetime | None]
    follow_up_done_at: Mapped[datetime | None]
    # Amended later when a loss is reported after the warning (预警后被骗).
    defrauded_after: Mapped[bool] = mapped_column(default=False)
    later_loss_amount: Mapped[Decimal | None] = mapped_column(Money)
    amended_at: Mapped[datetime | None]
    amended_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    warning: Mapped[Warning] = relationship(back_populates="outcome")
    recorded_by: Mapped[User] = relationship(foreign_keys=[recorded_by_id])


class TalkingPoints(Base):
    """Persuasion aid per fraud type, written by us, editable by an admin."""

    __tablename__ = "talking_points"

    fraud_type: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    text_zh: Mapped[str] = mapped_column(sa.Text)
    text_en: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
