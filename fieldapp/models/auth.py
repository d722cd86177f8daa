"""Server-side login sessions and the login throttle's counters."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.models.base import Base, utcnow


class UserSession(Base):
    """One login on one device; the cookie holds a random token, this row only its hash.

    A session counts only while its row is not ended, so logging out ends a copied cookie too.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None]
    # logout, logout_everywhere, password_changed, password_reset, deactivated
    end_reason: Mapped[str | None] = mapped_column(sa.String(32))


class LoginThrottle(Base):
    """Failed logins counted per bucket (account + address, account, address).

    Keys are HMACs of what was typed and where from: a password typed into the username box
    is never stored, and neither is the address.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # The HMAC of the account alone, so an unlock can clear every bucket of one account.
    account_key: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    blocked_until: Mapped[datetime | None]
