"""Chief pages."""

import sqlalchemy as sa
from flask import render_template

from fieldapp.access import roles_required, station_scope
from fieldapp.board import bp
from fieldapp.extensions import db
from fieldapp.models import OPEN_STATUSES, Warning


@bp.get("/")
@roles_required("chief")
def index():
    """Every open warning the chief may see, unassigned first, oldest first."""
    warnings = db.session.scalars(
        sa.select(Warning)
        .where(Warning.status.in_(OPEN_STATUSES), station_scope(Warning.station_id))
        .order_by((Warning.status == "unassigned").desc(), Warning.received_at)
    ).all()
    return render_template("board/index.html", warnings=warnings)
