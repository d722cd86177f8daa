"""Writing to the append-only event log, and reading it back as timelines and feeds."""

import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import Event, User, Warning


def record(
    kind: str,
    *,
    warning: Warning | None = None,
    actor: User | None = None,
    station_id: int | None = None,
    **data,
) -> Event:
    """Add an event to the session; it commits with the change it describes."""
    if station_id is None and warning is not None:
        station_id = warning.station_id
    if station_id is None and actor is not None:
        station_id = actor.station_id
    if warning is not None and warning.id is None:
        db.session.flush()
    event = Event(
        kind=kind,
        warning_id=warning.id if warning is not None else None,
        station_id=station_id,
        actor_id=actor.id if actor is not None else None,
        data=data,
    )
    db.session.add(event)
    return event


def timeline(warning_id: int) -> list[Event]:
    """Every event of one warning, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Event).where(Event.warning_id == warning_id).order_by(Event.id)
        )
    )


def since(last_id: int, station_id: int | None, limit: int = 500) -> list[Event]:
    """Events after `last_id` for one station (or all stations when None), oldest first."""
    query = sa.select(Event).where(Event.id > last_id).order_by(Event.id).limit(limit)
    if station_id is not None:
        query = query.where(Event.station_id == station_id)
    return list(db.session.scalars(query))
