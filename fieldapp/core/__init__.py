"""Pages that belong to no one feature: home, language, PWA files, health checks."""

from flask import Blueprint

bp = Blueprint("core", __name__)

from fieldapp.core import routes  # noqa: E402,F401
