"""A chief enters warnings by hand or uploads a CSV batch."""

from flask import Blueprint

bp = Blueprint("intake", __name__)

from fieldapp.intake import routes  # noqa: E402,F401
