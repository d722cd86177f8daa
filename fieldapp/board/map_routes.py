"""The chief's map data and the duty room's wall screen."""

from flask import current_app, g, jsonify, render_template, request
from flask_login import current_user

from fieldapp import board_read, clock
from fieldapp.access import roles_required, station_scope
from fieldapp.board import bp, mapdata
from fieldapp.models import FRAUD_TYPES, OPEN_STATUSES, Station, Warning

WALL_ROWS = 12


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _station_clause(column):
    """The chief's own station; an admin's ?station= choice, else every station."""
    clause = station_scope(column)
    station_id = _int_arg("station") if current_user.is_admin else None
    return clause if station_id is None else column == station_id


def _filters() -> board_read.Filters:
    status = request.args.get("status") or None
    fraud_type = request.args.get("fraud_type") or None
    return board_read.Filters(
        status=status if status in OPEN_STATUSES else None,
        officer_id=_int_arg("officer"),
        fraud_type=fraud_type if fraud_type in FRAUD_TYPES else None,
    )


@bp.get("/map.json")
@roles_required("chief")
def map_data():
    """Stations, on-duty officers and open warnings for the map, filtered like the board."""
    filters = _filters()
    data = mapdata.build(_station_clause(Station.id), filters, clock.now(), _int_arg("focus"))
    return jsonify(data)


@bp.get("/wall")
@roles_required("chief")
def wall():
    """The duty room's TV: counts, the most urgent warnings and the map, following the feed."""
    now = clock.now()
    rows = board_read.open_warnings(_station_clause(Warning.station_id), board_read.Filters(), now)
    stations = mapdata.stations(_station_clause(Station.id))
    context = {
        "rows": rows[:WALL_ROWS],
        "more": max(len(rows) - WALL_ROWS, 0),
        "counts": board_read.counts(rows),
        "on_duty": len(mapdata.on_duty([s.id for s in stations])),
        "stations": stations,
        "now": now,
    }
    g.vary_hx = True
    if request.headers.get("HX-Request"):
        return render_template("board/_wall.html", **context)
    station_id = _int_arg("station") if current_user.is_admin else None
    return render_template(
        "board/wall.html",
        **context,
        station_id=station_id,
        last_event_id=board_read.last_event_id(),
        map_settings=mapdata.page_settings(current_app.config),
    )
