"""Chief pages: the live board and its feed, a warning's timeline, the figures."""

import json
import time
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from fieldapp import board_view, clock, events, figures, labels
from fieldapp.access import can_see_station, roles_required, station_scope
from fieldapp.board import bp, report, timeline
from fieldapp.dispatch import DispatchError, reassign
from fieldapp.extensions import db
from fieldapp.models import FRAUD_TYPES, OPEN_STATUSES, Station, User, Warning

MAX_RANGE_DAYS = 366 * 2


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _filters() -> board_view.Filters:
    status = request.args.get("status") or None
    fraud_type = request.args.get("fraud_type") or None
    return board_view.Filters(
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
    rows = board_view.open_warnings(station_scope(Warning.station_id), filters, clock.now())
    stations = _visible_stations()
    officers = board_view.officers_by_station({s.id for s in stations})
    return {
        "rows": rows,
        "view": _board_strings(officers),
        "filters": filters,
        "stations": stations,
        "officers": officers,
        "all_officers": [u for s in stations for u in officers.get(s.id, [])],
        "statuses": OPEN_STATUSES,
        "fraud_types": FRAUD_TYPES,
        "args": {
            k: v
            for k, v in request.args.items()
            if k in ("status", "officer", "fraud_type", "station")
        },
    }


def _board_strings(officers: dict[int, list[User]]) -> dict:
    """Everything a board row repeats, translated and rendered once per request, not per row.

    A county board has a thousand rows; per-row url_for, gettext and option lists would
    dominate its rendering time.
    """
    detail = url_for("board.warning_detail", warning_id=0)
    reassign_url = url_for("board.reassign_warning", warning_id=0)
    unit = {"s": _("%(n)d s"), "min": _("%(n)d min"), "h": _("%(h)d h %(m)d min")}

    def ago(seconds: float) -> str:
        seconds = int(seconds)
        if seconds < 60:
            return unit["s"] % {"n": seconds}
        if seconds < 3600:
            return unit["min"] % {"n": seconds // 60}
        return unit["h"] % {"h": seconds // 3600, "m": (seconds % 3600) // 60}

    choose = Markup('<option value="">{}</option>').format(_("Choose…"))
    options = {
        sid: choose
        + Markup("").join(
            Markup('<option value="{}">{}</option>').format(u.id, u.display_name) for u in users
        )
        for sid, users in officers.items()
    }
    lateness_names = {"late": _("Late"), "due": _("Due"), "on_time": _("On time")}
    hidden = Markup(
        '<input type="hidden" name="csrf_token" value="{}">'
        '<input type="hidden" name="next" value="{}">'
    ).format(generate_csrf(), url_for("board.index", **request.args))
    return {
        "detail_prefix": detail[: -len("0")],
        "reassign_prefix": reassign_url.split("/0/")[0] + "/",
        "reassign_suffix": "/" + reassign_url.split("/0/")[1],
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
        "ago": ago,
        "options": options,
        "hidden": hidden,
    }


@bp.get("/")
@roles_required("chief")
def index():
    """Every open warning the chief may see, unassigned first, oldest first; live-updating."""
    g.vary_hx = True
    context = _board_context()
    if request.headers.get("HX-Request"):
        return render_template("board/_board.html", **context)
    context["last_event_id"] = board_view.last_event_id()
    return render_template("board/index.html", **context)


def _stream_station() -> int | None:
    if current_user.is_admin:
        return _int_arg("station")
    return current_user.station_id


def _start_id() -> int:
    # The browser's own reconnect carries Last-Event-ID; a fresh page passes where it started.
    header = request.headers.get("Last-Event-ID", "").strip()
    if header.isdigit():
        return int(header)
    start = _int_arg("last_id")
    # No starting point at all: begin from now rather than replaying the whole log.
    return start if start is not None else board_view.last_event_id()


@bp.get("/stream")
@roles_required("chief")
def stream():
    """Server-sent events: one "changed" message per warning event after the start id.

    The loop is bounded (the browser reconnects with Last-Event-ID) and releases its database
    connection between polls, so a wall screen open all day holds no thread or connection.
    """
    station_id = _stream_station()
    last_id = _start_id()
    seconds = current_app.config.get("BOARD_STREAM_SECONDS", 55)
    poll_s = current_app.config.get("BOARD_STREAM_POLL_S", 1.0)
    keepalive_s = 15.0

    def generate(last_id=last_id):
        yield "retry: 500\n\n"  # reconnect fast: the 2-second promise holds across reconnects
        started = last_beat = time.monotonic()
        while True:
            batch = events.since(last_id, station_id)
            messages = []
            for event in batch:
                last_id = event.id
                if event.warning_id is None:
                    continue
                data = json.dumps({"warning_id": event.warning_id, "kind": event.kind})
                messages.append(f"id: {event.id}\nevent: changed\ndata: {data}\n\n")
            db.session.close()  # end the read transaction; give the connection back
            if messages:
                last_beat = time.monotonic()
                yield "".join(messages)
            elif batch:
                # Only non-warning events: still move the browser's Last-Event-ID forward.
                yield f"id: {last_id}\ndata: \n\n"
            if len(batch) == 500:
                continue  # more waiting: catch up before sleeping
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                return
            if time.monotonic() - last_beat >= keepalive_s:
                last_beat = time.monotonic()
                yield ": keep-alive\n\n"
            time.sleep(min(poll_s, max(seconds - elapsed, 0)))

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _visible_warning(warning_id: int) -> Warning:
    warning = db.session.get(Warning, warning_id)
    # Another station's warning is "not found", so ids do not leak existence.
    if warning is None or not can_see_station(warning.station_id):
        abort(404)
    return warning


@bp.get("/warnings/<int:warning_id>")
@roles_required("chief")
def warning_detail(warning_id: int):
    """The warning's facts, its whole timeline, and the amend form for its outcome."""
    warning = _visible_warning(warning_id)
    return render_template(
        "board/warning.html",
        w=warning,
        timeline=timeline.render(events.timeline(warning.id)),
        officers=board_view.station_officers(warning.station_id),
        lateness=board_view.lateness(warning, warning.station.contact_target_s, clock.now()),
        errors={},
    )


@bp.post("/warnings/<int:warning_id>/reassign")
@roles_required("chief")
def reassign_warning(warning_id: int):
    """Hand a warning to another officer of its station, from the board or its page."""
    warning = _visible_warning(warning_id)
    to_id = request.form.get("to_user_id", "")
    to_user = db.session.get(User, int(to_id)) if to_id.isdigit() else None
    messages = {
        "closed": _("This warning is already closed."),
        "not_eligible": _("Choose an officer of this warning's station."),
        "already_theirs": _("This warning is already theirs."),
    }
    if to_user is None or to_user.station_id != warning.station_id:
        flash(messages["not_eligible"], "error")
    else:
        try:
            reassign(warning, to_user, current_user, clock.now())
        except DispatchError as exc:
            db.session.rollback()
            flash(messages.get(exc.code, _("That change could not be made.")), "error")
        else:
            db.session.commit()
            flash(_("Reassigned to %(name)s.", name=to_user.display_name), "success")
    target = request.form.get("next", "")
    if not target.startswith("/board/"):
        target = url_for("board.index")
    return redirect(target)


def _parse_amount(raw: str) -> tuple[Decimal | None, str | None]:
    raw = (raw or "").strip().replace(",", "")
    if not raw:
        return None, None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None, _("Enter an amount in yuan, e.g. 5000.")
    if not value.is_finite() or value < 0 or value >= Decimal("1e12"):
        return None, _("Enter an amount in yuan, e.g. 5000.")
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
        errors["outcome"] = _("This warning has no outcome yet.")
    if not errors:
        board_view.amend_outcome(
            warning, current_user, clock.now(), defrauded_after=defrauded, later_loss_amount=amount
        )
        db.session.commit()
        flash(_("Outcome amended."), "success")
        return redirect(url_for("board.warning_detail", warning_id=warning.id))
    return (
        render_template(
            "board/warning.html",
            w=warning,
            timeline=timeline.render(events.timeline(warning.id)),
            officers=board_view.station_officers(warning.station_id),
            lateness=board_view.lateness(warning, warning.station.contact_target_s, clock.now()),
            errors=errors,
        ),
        422,
    )


def _period() -> tuple[figures.Period, str, dict]:
    """The period from ?period=today|week|month|custom&start=&end= (end date inclusive)."""
    now = clock.now()
    name = request.args.get("period", "today")
    errors = {}
    if name == "custom":
        try:
            start = date.fromisoformat(request.args.get("start", ""))
            last = date.fromisoformat(request.args.get("end", ""))
        except ValueError:
            errors["period"] = _("Enter both dates as YYYY-MM-DD.")
        else:
            if last < start:
                errors["period"] = _("The end date must not be before the start date.")
            elif (last - start).days > MAX_RANGE_DAYS:
                errors["period"] = _("Choose at most two years.")
            else:
                return figures.Period(start, last + timedelta(days=1)), name, errors
        name = "today"
    elif name not in ("today", "week", "month"):
        name = "today"
    return figures.preset(name, now), name, errors


def _figures_scope() -> tuple[int | None, str]:
    """The station the figures are about: a chief's own; an admin's choice or the county."""
    if not current_user.is_admin:
        station = db.session.get(Station, current_user.station_id)
        return station.id, f"{station.name} ({station.code})"
    station_id = _int_arg("station")
    station = db.session.get(Station, station_id) if station_id else None
    if station is None:
        return None, _("County (all stations)")
    return station.id, f"{station.name} ({station.code})"


@bp.get("/figures")
@roles_required("chief")
def figures_page():
    """The desk's figures for a period, beside the same period last year, with charts."""
    period, name, errors = _period()
    station_id, station_label = _figures_scope()
    fig = figures.compute(period, station_id)
    last = fig.last_year
    prev_types = {b.key: b.received for b in last.fraud_types} if last else {}
    charts = {
        "channels": report.bar_chart(
            [
                (labels.label(labels.CHANNELS, c), n, last.channels.get(c, 0) if last else None)
                for c, n in fig.channels.items()
            ],
            _("Channel that reached people"),
        ),
        "types": report.bar_chart(
            [
                (labels.label(labels.FRAUD_TYPES, b.key), b.received, prev_types.get(b.key, 0))
                for b in fig.fraud_types
            ],
            _("Warnings by scam type"),
        ),
    }
    return render_template(
        "board/figures.html",
        fig=fig,
        summary=report.summary_rows(fig),
        charts=charts,
        period_name=name,
        period_last_day=period.end - timedelta(days=1),
        last_year_last_day=last.period.end - timedelta(days=1),
        station_label=station_label,
        station_id=station_id,
        stations=_visible_stations() if current_user.is_admin else [],
        errors=errors,
        fmt_rate=report.fmt_rate,
        args=request.args.to_dict(),
    )


@bp.get("/figures.csv")
@roles_required("chief")
def figures_csv():
    """The same figures as the page, as a CSV that Excel opens correctly."""
    period, _name, _errors = _period()
    station_id, station_label = _figures_scope()
    fig = figures.compute(period, station_id)
    body = report.csv_bytes(fig, station_label)
    filename = f"fieldapp-figures-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )
