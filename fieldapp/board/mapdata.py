"""What the chief's map shows, as plain data for its JSON endpoint.

Stations, on-duty field users with the age of their last position, and open warnings coloured
by lateness. Positions are WGS-84 as stored; the browser shifts them for a GCJ-02 tile source.
Nothing here goes beyond what the board already shows: no resident's name, phone or address.
"""

from datetime import datetime

import sqlalchemy as sa
from flask import url_for
from flask_babel import gettext as _

from fieldapp import board_read, labels, names, nearest, numbers, tiles
from fieldapp.extensions import db
from fieldapp.models import Station, User, Warning


def stations(station_clause) -> list[Station]:
    """The stations the map covers."""
    return list(db.session.scalars(sa.select(Station).where(station_clause).order_by(Station.code)))


def on_duty(station_ids: list[int]) -> list[User]:
    """Active field users on duty at these stations, positioned or not."""
    if not station_ids:
        return []
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.working_at(station_ids), User.duty_status == "on_duty")
            .order_by(User.display_name, User.id)
        )
    )


def _officer(user: User, station: Station, open_count: int, now: datetime) -> dict:
    age = (now - user.position_at).total_seconds() if user.position_at else None
    fresh = age is not None and age <= station.position_stale_s
    lines = [f"{labels.label(labels.ROLES, user.role)} · {_('On duty')}"]
    if age is not None:
        where = _("Position %(age)s ago", age=numbers.duration(age))
        if user.accuracy_m:
            where += " " + _("(±%(m)s)", m=labels.distance(user.accuracy_m))
        lines.append(where if fresh else where + " · " + _("out of date"))
    lines.append(_("Open warnings: %(n)d", n=open_count))
    return {
        "id": user.id,
        "lat": user.lat,
        "lon": user.lon,
        "fresh": fresh,
        "age_s": round(age) if age is not None else None,
        "title": names.of(user),
        "lines": lines,
    }


def _strings() -> dict:
    """Sentences every warning marker repeats, translated once per request."""
    return {
        "lateness": {"late": _("Late"), "due": _("Due"), "on_time": _("On time")},
        "detail": url_for("board.warning_detail", warning_id=0)[: -len("0")],
        "link": _("Open the warning"),
    }


def _warning(row: board_read.BoardRow, strings: dict) -> dict:
    w = row.warning
    lateness_names = strings["lateness"]
    lines = [
        _("Status: %(status)s", status=labels.label(labels.STATUSES, w.status))
        + " · "
        + lateness_names[row.lateness],
        _("Waiting: %(time)s", time=numbers.duration(row.waited_s)),
    ]
    if row.owner is not None:
        lines.append(_("Officer: %(name)s", name=row.owner.label))
    for holder in row.holders:
        lines.append(holder_text(holder))
    return {
        "id": w.id,
        "lat": w.lat,
        "lon": w.lon,
        "lateness": row.lateness,
        "unassigned": w.status == "unassigned",
        "title": _("Warning %(id)s", id=w.id)
        + f" · {labels.label(labels.FRAUD_TYPES, w.fraud_type)}"
        + f" · {labels.label(labels.RISK_LEVELS, w.risk_level)}",
        "lines": lines,
        "url": f"{strings['detail']}{w.id}",
        "link": strings["link"],
    }


def _closed_or_filtered(station_clause, warning_id: int, strings: dict) -> dict | None:
    """The warning a page is about, when the open-warning list does not hold it."""
    # `station_clause` is about Station: join it, or the clause would not limit anything.
    w = db.session.scalar(
        sa.select(Warning)
        .join(Station, Station.id == Warning.station_id)
        .where(Warning.id == warning_id, station_clause)
    )
    if w is None or w.lat is None or w.lon is None:
        return None
    target = w.station.contact_target_s
    state = board_read.lateness(w, target, w.resolved_at or w.last_action_at or w.received_at)
    return {
        "id": w.id,
        "lat": w.lat,
        "lon": w.lon,
        "lateness": state,
        "unassigned": w.status == "unassigned",
        "title": _("Warning %(id)s", id=w.id)
        + f" · {labels.label(labels.FRAUD_TYPES, w.fraud_type)}",
        "lines": [
            _("Status: %(status)s", status=labels.label(labels.STATUSES, w.status))
            + " · "
            + strings["lateness"][state]
        ],
        "url": f"{strings['detail']}{w.id}",
        "link": strings["link"],
        "focus": True,
    }


def holder_text(holder: board_read.Holder) -> str:
    """ "Offered to 杨强（警号 …）, 0:45 left" or "…, overdue": who holds the pending offer."""
    if holder.left_s is None:
        return _("Offered to %(name)s", name=holder.officer.label)
    if holder.left_s <= 0:
        return _("Offered to %(name)s, overdue", name=holder.officer.label)
    return _(
        "Offered to %(name)s, %(left)s left",
        name=holder.officer.label,
        left=numbers.countdown(holder.left_s),
    )


def build(station_clause, filters: board_read.Filters, now: datetime, focus: int | None) -> dict:
    """Everything the map draws for the stations of `station_clause`, filtered like the board."""
    covered = stations(station_clause)
    by_id = {s.id: s for s in covered}
    people = [u for u in on_duty(list(by_id)) if u.station_id in by_id]
    placed = [u for u in people if u.lat is not None and u.lon is not None]
    loads = nearest.workloads([u.id for u in placed])
    rows = board_read.open_warnings(station_clause, filters, now)
    strings = _strings()
    warnings = [_warning(r, strings) for r in rows if r.warning.lat is not None]
    for item in warnings:
        item["focus"] = item["id"] == focus
    if focus is not None and not any(item["focus"] for item in warnings):
        extra = _closed_or_filtered(station_clause, focus, strings)
        if extra is not None:
            warnings.append(extra)
    notes = []
    if len(placed) < len(people):
        notes.append(_("On duty without a position: %(n)d", n=len(people) - len(placed)))
    if len(warnings) < len(rows):
        notes.append(_("Open warnings without a location: %(n)d", n=len(rows) - len(warnings)))
    return {
        "stations": [
            {
                "id": s.id,
                "lat": s.lat,
                "lon": s.lon,
                "title": f"{s.name} ({s.code})",
                "lines": [_("On duty: %(n)d", n=sum(1 for u in people if u.station_id == s.id))],
            }
            for s in covered
        ],
        "officers": [_officer(u, by_id[u.station_id], loads.get(u.id, 0), now) for u in placed],
        "warnings": warnings,
        "notes": notes,
    }


def page_settings(config) -> dict:
    """What a page's map script needs besides the data: the tile source, or none (a grid)."""
    source = tiles.source(config)
    return {"tiles": source.as_dict() if source is not None else None}
