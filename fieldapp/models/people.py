"""Stations, the people who work there, and the anti-fraud centre's intake tokens."""

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.models.base import Base, utcnow

ROLES = ("officer", "auxiliary", "chief", "admin")
FIELD_ROLES = ("officer", "auxiliary")
DUTY_STATUSES = ("on_duty", "off_duty")


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    lat: Mapped[float]
    lon: Mapped[float]
    # Seconds an offer waits for an accept before it moves on to the next officer.
    ack_timeout_s: Mapped[int] = mapped_column(default=90, server_default="90")
    # Seconds without a push receipt before the offer also goes out by SMS.
    receipt_timeout_s: Mapped[int] = mapped_column(default=20, server_default="20")
    # A position older than this does not count for dispatch.
    position_stale_s: Mapped[int] = mapped_column(default=900, server_default="900")
    # Target time from receipt to first contact (5 min in town, 10 in the countryside).
    contact_target_s: Mapped[int] = mapped_column(default=300, server_default="300")
    auxiliaries_take_offers: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # 见面劝阻: a high-risk warning needs an in-person visit before it can close as persuaded.
    require_visit_for_high_risk: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    # High-risk warnings are offered to this many of the nearest at once (1..5); the first
    # accept wins. Other risk levels go to one officer at a time.
    parallel_offers_high: Mapped[int] = mapped_column(default=2, server_default="2")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    users: Mapped[list["User"]] = relationship(back_populates="station")

    def __repr__(self) -> str:
        return f"<Station {self.code}>"


class User(UserMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.Index("ix_users_station_duty", "station_id", "duty_status"),
        sa.Index("ix_users_duty_lat_lon", "duty_status", "lat", "lon"),
        # 警号: tells two officers of the same name apart; rows from before it may have none.
        sa.UniqueConstraint("station_id", "badge_no", name="uq_users_station_badge_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    display_name: Mapped[str] = mapped_column(sa.String(64))
    badge_no: Mapped[str | None] = mapped_column(sa.String(16))
    role: Mapped[str] = mapped_column(sa.String(16))
    station_id: Mapped[int] = mapped_column(sa.ForeignKey("stations.id"), index=True)
    # The officer's own phone, for the SMS fallback.
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    duty_status: Mapped[str] = mapped_column(sa.String(16), default="off_duty")
    duty_changed_at: Mapped[datetime | None]
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    position_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    # Set by a password reset: the one-time password works until it expires, and only to
    # reach the page where the user chooses their own.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    temp_password_expires_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Bumped on password change, reset, deactivation or "log out everywhere"; sessions carrying
    # an older one end (each session is also a row of its own: models/auth.py).
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    station: Mapped[Station] = relationship(back_populates="users")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_chief(self) -> bool:
        return self.role in ("chief", "admin")

    def works_at(self, station_id: int) -> bool:
        """An active field user (officer or auxiliary) of that station: the one test of it."""
        return self.active and self.role in FIELD_ROLES and self.station_id == station_id

    @classmethod
    def working_at(cls, station_ids) -> sa.ColumnElement[bool]:
        """`works_at` as SQL, for a set of stations."""
        return sa.and_(
            cls.station_id.in_(list(station_ids)), cls.role.in_(FIELD_ROLES), cls.active.is_(True)
        )

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class IntakeToken(Base):
    __tablename__ = "intake_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # SHA-256 of the token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    station_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stations.id"))
    webhook_url: Mapped[str | None] = mapped_column(sa.String(500))
    webhook_secret: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    station: Mapped[Station | None] = relationship()


__all__ = ["ROLES", "FIELD_ROLES", "DUTY_STATUSES", "Station", "User", "IntakeToken"]
