"""The desk's figures: the page and its CSV export, for a chief's station or (admin) the county."""

from datetime import date, timedelta

import sqlalchemy as sa
from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from fieldapp import clock, figures, labels, periods
from fieldapp.access import roles_required
from fieldapp.board import bp, report
from fieldapp.extensions import db
from fieldapp.models import Station
from fieldapp.validation import FIRST_YEAR, LAST_YEAR, date_in_range, parse_id

MAX_RANGE_DAYS = 366 * 2


def _period() -> tuple[periods.Period, str, dict]:
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
            elif not (date_in_range(start) and date_in_range(last)):
                errors["period"] = _(
                    "Choose dates between %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR
                )
            else:
                return periods.Period(start, last + timedelta(days=1)), name, errors
        name = "today"
    elif name not in ("today", "week", "month"):
        name = "today"
    return periods.preset(name, now), name, errors


def _station_names() -> dict[int, str]:
    return {
        sid: f"{name} ({code})"
        for sid, name, code in db.session.execute(sa.select(Station.id, Station.name, Station.code))
    }


def _figures_scope(station_names: dict[int, str]) -> tuple[int | None, str]:
    """The station the figures are about: a chief's own; an admin's choice or the county."""
    if not current_user.is_admin:
        return current_user.station_id, station_names[current_user.station_id]
    station_id = parse_id(request.args.get("station"))
    if station_id not in station_names:
        return None, _("County (all stations)")
    return station_id, station_names[station_id]


def _charts(fig: figures.Figures) -> dict:
    last = fig.last_year
    prev_types = {b.key: b.received for b in last.fraud_types} if last else {}
    return {
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


@bp.get("/figures")
@roles_required("chief")
def figures_page():
    """The desk's figures for a period, beside the same period last year, with charts."""
    period, name, errors = _period()
    station_names = _station_names()
    station_id, station_label = _figures_scope(station_names)
    fig = figures.compute(period, station_id)
    county = station_id is None
    return render_template(
        "board/figures.html",
        fig=fig,
        summary=report.summary_rows(fig, report.LOCALE),
        charts=_charts(fig),
        period_name=name,
        period_label=report.period_label(period),
        last_year_label=report.period_label(fig.last_year.period),
        station_label=station_label,
        station_id=station_id,
        stations=sorted(station_names.items(), key=lambda i: i[1]) if current_user.is_admin else [],
        officer_groups=report.by_station(fig.officers, station_names if county else {}),
        workload_groups=report.by_station(fig.workload, station_names if county else {}),
        county=county,
        errors=errors,
        args=request.args.to_dict(),
    )


@bp.get("/figures.csv")
@roles_required("chief")
def figures_csv():
    """The same figures as the page, as a CSV that Excel opens correctly."""
    period, _name, _errors = _period()
    station_names = _station_names()
    station_id, station_label = _figures_scope(station_names)
    fig = figures.compute(period, station_id)
    body = report.csv_bytes(fig, station_label, station_names)
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{report.csv_filename(period)}"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )
