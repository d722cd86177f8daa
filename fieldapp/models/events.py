"""The append-only event log: each warning's timeline, the audit trail, the board's feed."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.models.base import Base, utcnow
from fieldapp.models.people import User


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_station_id", "station_id", "id"),
        sa.Index("ix_events_warning_id", "warning_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    warning_id: Mapped[int | None] = mapped_column(sa.ForeignKey("warnings.id"))
    station_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stations.id"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # Never personal data: ids, kinds, channels, distances, amounts.
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship()


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete an event."""


@sa.event.listens_for(Event, "before_update")
@sa.event.listens_for(Event, "before_delete")
def _append_only(_mapper, _connection, target: Event) -> None:
    # The ORM-level twin of the PostgreSQL trigger, so SQLite refuses it too.
    raise AppendOnlyError(f"events are append-only (event {target.id})")


class ClientMutation(Base):
    """Every change a device makes, keyed by the id the device made when the entry was created."""

    __tablename__ = "client_mutations"

    client_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    warning_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
