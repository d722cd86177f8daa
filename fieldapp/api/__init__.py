"""JSON API: warnings from the anti-fraud centre (centre.py), and the officer's device endpoints."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from fieldapp.api import centre, device, openapi, sync  # noqa: E402,F401
