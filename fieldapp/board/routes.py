"""Chief pages: the live board and its feed, a warning's whole case, reassigning, amending."""

from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from fieldapp import (
    amendments,
    board_read,
    clock,
    events,
    helping,
    labels,
    live,
    names,
    numbers,
    refusals,
    resident_reads,
)
from fieldapp.access import roles_required, station_scope, visible_warning
from fieldapp.board import bp, mapdata, picker, timeline
from fieldapp.dispatch import reassign
from fieldapp.extensions import db
from fieldapp.live import items as live_items
from fieldapp.models import FRAUD_TYPES, OPEN_STATUSES, Station, User, Warning
from fieldapp.refusals import Refusal
from fieldapp.validation import MAX_EVENT_ID, MAX_ID, parse_id


def _int_arg(name: str, maximum: int = MAX_ID) -> int | None:
    return parse_id(request.args.get(name), maximum)


def _filters() -> board_read.Filters:
    status = request.args.get("status") or None
    fraud_type = request.args.get("fraud_type") or None
    return board_read.Filters(
        status=status if status in OPEN_STATUSES else None,
        officer_id=_int_arg("officer"),
        fraud_type=fraud_type if fraud_type in FRAUD_TYPES else None,
        station_id=_int_arg("station") if current_user.is_admin else None,
    )


def _visible_stations() -> list[Station]:
    return list(
        db.session.scalars(
            sa.select(Station).where(station_scope(Station.id)).order_by(Station.code)
        )
    )


def _board_context() -> dict:
    filters = _filters()
    rows = board_read.open_warnings(station_scope(Warning.station_id), filters, clock.now())
    stations = _visible_stations()
    officers = board_read.officers_by_station({s.id for s in stations})
    return {
        "rows": rows,
        "view": _board_strings(),
        "filters": filters,
        "stations": stations,
        "officers": officers,
        "all_officers": [u for s in stations for u in officers.get(s.id, [])],
        "counts": board_read.counts(rows),
        "map_settings": mapdata.page_settings(current_app.config),
        "statuses": OPEN_STATUSES,
        "fraud_types": FRAUD_TYPES,
        "args": {
            k: v
            for k, v in request.args.items()
            if k in ("status", "officer", "fraud_type", "station")
        },
    }


def _board_strings() -> dict:
    """Everything a board row repeats, translated and rendered once per request, not per row.

    A county board has a thousand rows; per-row url_for, gettext and option lists would
    dominate its rendering time.
    """
    detail = url_for("board.warning_detail", warning_id=0)
    picker_url = url_for("board.reassign_picker", warning_id=0)
    unit = {"s": _("%(n)d s"), "min": _("%(n)d min"), "h": _("%(h)d h %(m)d min")}

    def ago(seconds: float) -> str:
        seconds = int(seconds)
        if seconds < 60:
            return unit["s"] % {"n": seconds}
        if seconds < 3600:
            return unit["min"] % {"n": seconds // 60}
        return unit["h"] % {"h": seconds // 3600, "m": (seconds % 3600) // 60}

    # The same "剩余 1:29" the officer's page counts down (board.js fills in %(t)s).
    left = _("%(t)s left")

    def time_left(seconds: float | None) -> str:
        return "" if seconds is None else left % {"t": numbers.countdown(seconds)}

    lateness_names = {"late": _("Late"), "due": _("Due"), "on_time": _("On time")}
    return {
        "detail_prefix": detail[: -len("0")],
        "picker_prefix": picker_url.split("/0/")[0] + "/",
        "picker_suffix": "/" + picker_url.split("/0/")[1],
        "status": {k: str(v) for k, v in labels.STATUSES.items()},
        "fraud": {k: str(v) for k, v in labels.FRAUD_TYPES.items()},
        "risk": {k: str(v) for k, v in labels.RISK_LEVELS.items()},
        "channel": {k: str(v) for k, v in labels.CHANNELS.items()},
        "lateness": lateness_names,
        "pill": {
            k: Markup('<span class="pill {}">{}</span>').format(k, v)
            for k, v in lateness_names.items()
        },
        "flag_late": Markup('<span class="flag late">{}</span>').format(_("Late")),
        "flag_unreached": Markup('<span class="flag due">{}</span>').format(_("Not reached yet")),
        "flag_defrauded": Markup('<span class="flag late">{}</span>').format(
            _("Defrauded after warning")
        ),
        "offered_to": _("Offered to"),
        "overdue": _("overdue, moving on"),
        "left_template": left,
        "ago": ago,
        "time_left": time_left,
    }


@bp.get("/")
@roles_required("chief")
def index():
    """Every open warning the chief may see, unassigned first, oldest first; live-updating."""
    g.vary_hx = True
    context = _board_context()
    if request.headers.get("HX-Request"):
        return render_template("board/_board.html", **context)
    context["last_event_id"] = board_read.last_event_id()
    return render_template("board/index.html", **context)


def _stream_station() -> int | None:
    if current_user.is_admin:
        return _int_arg("station")
    return current_user.station_id


def _start_id() -> int:
    # The browser's own reconnect carries Last-Event-ID; a fresh page passes where it started.
    header = parse_id(request.headers.get("Last-Event-ID"), MAX_EVENT_ID)
    if header is not None:
        return header
    start = _int_arg("last_id", MAX_EVENT_ID)
    # No starting point at all: begin from now rather than replaying the whole log.
    return start if start is not None else board_read.last_event_id()


@bp.get("/stream")
@roles_required("chief")
def stream():
    """Server-sent events: one "changed" message per warning event after the start id.

    Caught up from the event log, then fed by the process's one event reader (fieldapp/live);
    bounded (the browser reconnects with Last-Event-ID) and holding no database connection
    while it waits, so a wall screen open all day costs a queue, not a thread.
    """
    station_id = _stream_station()
    config = current_app.config
    return live.response(
        key=("board", current_user.id),
        station_id=station_id,
        render=live_items.board_items,
        last_id=_start_id(),
        seconds=float(config.get("BOARD_STREAM_SECONDS", 55)),
        keepalive=15.0,
        retry_ms=500,  # reconnect fast: the 2-second promise holds across reconnects
        full=False,
    )


def _visible_warning(warning_id: int) -> Warning:
    return visible_warning(warning_id) or abort(404)


def _render_warning(warning: Warning, errors: dict, status: int = 200):
    """The whole case: facts, what the centre and the officers wrote, the map, the timeline."""
    now = clock.now()
    holders = board_read.pending_holders([warning.id], now).get(warning.id, [])
    return render_template(
        "board/warning.html",
        w=warning,
        timeline=timeline.render(events.timeline(warning.id)),
        choices=picker.choices(warning, now) if warning.is_open else [],
        holders=[(h, mapdata.holder_text(h)) for h in holders],
        lateness=board_read.lateness(warning, warning.station.contact_target_s, now),
        map_settings=mapdata.page_settings(current_app.config),
        created_by=db.session.get(User, warning.created_by_id) if warning.created_by_id else None,
        amended_by=(
            db.session.get(User, warning.outcome.amended_by_id)
            if warning.outcome is not None and warning.outcome.amended_by_id
            else None
        ),
        errors=errors,
    ), status


@bp.get("/warnings/<int:warning_id>")
@roles_required("chief")
@resident_reads.limited
def warning_detail(warning_id: int):
    """The warning's whole case, its timeline, the reassign picker and the amend form."""
    warning = _visible_warning(warning_id)
    resident_reads.record(warning, current_user, "board")
    page = _render_warning(warning, {})
    db.session.commit()  # the read's audit event
    return page


@bp.get("/warnings/<int:warning_id>/reassign")
@roles_required("chief")
def reassign_picker(warning_id: int):
    """Who could take the warning, with the facts that decide; a fragment for the board's dialog."""
    warning = _visible_warning(warning_id)
    g.vary_hx = True
    template = "board/_picker.html" if request.headers.get("HX-Request") else "board/picker.html"
    nxt = request.args.get("next", "")
    return render_template(
        template,
        w=warning,
        choices=picker.choices(warning, clock.now()) if warning.is_open else [],
        next=nxt if nxt.startswith("/board/") else url_for("board.index"),
    )


@bp.post("/warnings/<int:warning_id>/reassign")
@roles_required("chief")
def reassign_warning(warning_id: int):
    """Hand a warning to another officer of its station, from the board or its page."""
    warning = _visible_warning(warning_id)
    to_id = parse_id(request.form.get("to_user_id"))
    to_user = db.session.get(User, to_id) if to_id is not None else None
    try:
        if to_user is None or to_user.station_id != warning.station_id:
            raise Refusal("invitee_not_eligible")
        reassign(warning, to_user, current_user, clock.now())
    except Refusal as exc:
        db.session.rollback()
        flash(exc.message(), "error")
    else:
        db.session.commit()
        flash(_("Reassigned to %(name)s.", name=names.of(to_user)), "success")
    target = request.form.get("next", "")
    if not target.startswith("/board/"):
        target = url_for("board.index")
    return redirect(target)


@bp.post("/warnings/<int:warning_id>/ask-to-join")
@roles_required("chief")
def ask_to_join(warning_id: int):
    """A chief asks one named officer of the station to join a warning (helping.ask_to_join)."""
    warning = _visible_warning(warning_id)
    to_id = parse_id(request.form.get("user_id"))
    officer = db.session.get(User, to_id) if to_id is not None else None
    try:
        if officer is None:
            raise Refusal("invitee_not_eligible")
        helping.ask_to_join(warning, officer, current_user, clock.now())
    except Refusal as exc:
        db.session.rollback()
        flash(exc.message(), "error")
    else:
        db.session.commit()
        flash(_("%(name)s was asked to join.", name=names.of(officer)), "success")
    return redirect(url_for("board.warning_detail", warning_id=warning.id))


def _parse_amount(raw: str) -> tuple[Decimal | None, str | None]:
    raw = (raw or "").strip().replace(",", "")
    if not raw:
        return None, None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None, refusals.message("loss_invalid")
    if not value.is_finite() or value < 0 or value >= Decimal("1e12"):
        return None, refusals.message("loss_invalid")
    return value.quantize(Decimal("0.01")), None


@bp.post("/warnings/<int:warning_id>/outcome")
@roles_required("chief")
def amend_outcome(warning_id: int):
    """A chief records that the person was defrauded after the warning, or corrects it."""
    warning = _visible_warning(warning_id)
    errors = {}
    defrauded = request.form.get("defrauded_after") == "1"
    amount, amount_error = _parse_amount(request.form.get("later_loss_amount", ""))
    if amount_error:
        errors["later_loss_amount"] = amount_error
    if warning.outcome is None:
        errors["outcome"] = refusals.message("no_outcome")
    if not errors:
        amendments.amend_outcome(
            warning, current_user, clock.now(), defrauded_after=defrauded, later_loss_amount=amount
        )
        db.session.commit()
        flash(_("Outcome amended."), "success")
        return redirect(url_for("board.warning_detail", warning_id=warning.id))
    return _render_warning(warning, errors, 422)
