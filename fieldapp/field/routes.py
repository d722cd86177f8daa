"""Officer pages."""

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from fieldapp.access import roles_required
from fieldapp.extensions import db
from fieldapp.field import bp
from fieldapp.models import OPEN_STATUSES, Offer, Warning


@bp.get("/")
@roles_required("officer", "auxiliary")
def index():
    """Offers waiting for an answer, then the warnings this officer owns."""
    offers = db.session.scalars(
        sa.select(Offer)
        .where(Offer.officer_id == current_user.id, Offer.status == "pending")
        .order_by(Offer.expires_at)
    ).all()
    owned = db.session.scalars(
        sa.select(Warning)
        .where(Warning.owner_id == current_user.id, Warning.status.in_(OPEN_STATUSES))
        .order_by(Warning.received_at)
    ).all()
    return render_template("field/index.html", offers=offers, owned=owned)
