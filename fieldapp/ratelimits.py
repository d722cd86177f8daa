"""Request rate limits (Flask-Limiter) and how a 429 tells the caller when to come back."""

import math
import time

from flask import current_app
from flask_babel import gettext as _

from fieldapp.extensions import limiter


def login_flood_limit() -> str:
    """Login POSTs per address: a flood guard only; login_throttle does the real counting."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def retry_after_s() -> int:
    """Seconds until the limit this request broke lets requests through again (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 60
    try:
        return max(1, math.ceil(current.reset_at - time.time()))
    except Exception:  # the storage went away: a minute is a safe guess
        return 60


def wait_message(seconds: int) -> str:
    """'Try again in …', in the reader's language."""
    if seconds < 120:
        return _("Too many requests: try again in %(n)d seconds.", n=seconds)
    return _("Too many requests: try again in %(n)d minutes.", n=math.ceil(seconds / 60))
