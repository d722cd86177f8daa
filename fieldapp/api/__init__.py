"""JSON API: intake from the anti-fraud centre, and the officer's device endpoints."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from fieldapp.api import device, intake, openapi, sync  # noqa: E402,F401
