"""A station's dispatch settings, changed by its chief or an admin."""

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

from fieldapp import events
from fieldapp.access import can_see_station, roles_required
from fieldapp.board import bp
from fieldapp.dispatch import MAX_PARALLEL
from fieldapp.extensions import db
from fieldapp.models import Station


class StationSettingsForm(FlaskForm):
    parallel_offers_high = IntegerField(
        _l("Offer high-risk warnings to the N nearest at once"),
        validators=[
            InputRequired(_l("Enter a whole number from 1 to 5.")),
            NumberRange(1, MAX_PARALLEL, _l("Enter a whole number from 1 to 5.")),
        ],
    )


def _station(station_id: int) -> Station:
    """The station of the URL, if the caller may change it; another station's is 404."""
    station = db.session.get(Station, station_id)
    if station is None or not can_see_station(station.id):
        abort(404)
    return station


@bp.route("/stations/<int:station_id>/settings", methods=["GET", "POST"])
@roles_required("chief")
def station_settings(station_id: int):
    """How many officers a high-risk warning is offered to at once."""
    station = _station(station_id)
    form = StationSettingsForm(obj=station)
    if form.validate_on_submit():
        old = station.parallel_offers_high
        station.parallel_offers_high = form.parallel_offers_high.data
        if old != station.parallel_offers_high:
            events.record(
                "station_settings_changed",
                actor=current_user,
                station_id=station.id,
                parallel_offers_high=station.parallel_offers_high,
                was=old,
            )
        db.session.commit()
        flash(_("Settings saved."), "success")
        return redirect(url_for("board.station_settings", station_id=station.id))
    status = 422 if form.errors else 200
    return render_template("board/station_settings.html", station=station, form=form), status
