"""People management pages for chiefs (their station) and admins (everyone)."""

from flask import Blueprint

bp = Blueprint("people", __name__)

from fieldapp.people import routes  # noqa: E402,F401
