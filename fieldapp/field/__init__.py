"""The officer's pages: my warnings, a warning, settings."""

from flask import Blueprint

bp = Blueprint("field", __name__)

from fieldapp.field import routes  # noqa: E402,F401
