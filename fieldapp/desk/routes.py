"""A chief enters one warning by hand, or uploads a CSV batch."""

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from fieldapp import csv_import, express, warning_intake
from fieldapp.access import roles_required
from fieldapp.board import mapdata
from fieldapp.desk import bp
from fieldapp.extensions import db
from fieldapp.models import FRAUD_TYPES, RISK_LEVELS, Station
from fieldapp.refusals import Refusal


def _stations() -> list[Station]:
    query = sa.select(Station).order_by(Station.code)
    if not current_user.is_admin:
        query = query.where(Station.id == current_user.station_id)
    return list(db.session.scalars(query))


@bp.route("/new", methods=["GET", "POST"])
@roles_required("chief")
def new_warning():
    """The hand-entry form; bad input re-shows the form with a message per field."""
    errors: dict[str, str] = {}
    values = request.form.to_dict() if request.method == "POST" else {}
    if request.method == "POST":
        data, errors = csv_import.validate_row(values)
        if not errors:
            try:
                result = warning_intake.enter_by_hand(data, current_user)
            except Refusal as exc:
                db.session.rollback()
                errors = exc.errors()
            else:
                warning_id = result.warning.id
                fast = express.prepare(result.push)
                db.session.commit()
                flash(_("Warning received and dispatched."), "success")
                return express.send_after(
                    redirect(url_for("board.index", _anchor=f"w{warning_id}")), fast
                )
    status = 422 if errors else 200
    return render_template(
        "desk/new.html",
        errors=errors,
        values=values,
        stations=_stations(),
        fraud_types=FRAUD_TYPES,
        risk_levels=RISK_LEVELS,
        map_settings=mapdata.page_settings(current_app.config),
    ), status


@bp.route("/import", methods=["GET", "POST"])
@roles_required("chief")
def import_batch():
    """CSV upload: per-row errors, and nothing stored unless every row is right."""
    report = None
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Choose a CSV file to upload."), "error")
            return render_template("desk/import.html", report=None, columns=csv_import.COLUMNS), 422
        report = csv_import.import_csv(upload.read(), current_user)
        if report.ok:
            db.session.commit()
            flash(_("%(n)d warnings imported and dispatched.", n=len(report.created)), "success")
            return redirect(url_for("board.index"))
        db.session.rollback()
    status = 422 if report is not None and not report.ok else 200
    return render_template("desk/import.html", report=report, columns=csv_import.COLUMNS), status
