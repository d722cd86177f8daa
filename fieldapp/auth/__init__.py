"""Logging in and out, one's own password."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from fieldapp.auth import routes, sessions  # noqa: E402,F401

bp.before_app_request(sessions.require_password_change)
