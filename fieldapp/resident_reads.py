"""Reading a resident's page: every read is an audit event, and reads per user are limited.

Everyone of a station may open any of its warnings (a colleague may be the one who can reach
the person), so bulk reading cannot be refused by role; it is recorded and slowed instead.
The event carries ids only. It names the warning in its data, not in its warning column, so
reads stay out of the warning's timeline and the board's live feed.
"""

from flask import current_app
from flask_babel import gettext as _
from flask_login import current_user

from fieldapp import events
from fieldapp.extensions import limiter
from fieldapp.models import User, Warning


def _reader() -> str:
    return f"user:{current_user.id}"


# Under the login check of the view, so the key is always a user.
limited = limiter.shared_limit(
    lambda: current_app.config["RESIDENT_READ_RATE_LIMIT"],
    scope="resident_read",
    key_func=_reader,
    error_message=lambda: _(
        "You have opened many residents' pages in a short time. Every opening is recorded; "
        "please wait a minute and try again."
    ),
)


def record(warning: Warning, user: User, page: str) -> None:
    """Add the audit event of `user` reading `warning`'s page ("field" or "board")."""
    events.record(
        "resident_viewed",
        actor=user,
        station_id=warning.station_id,
        warning_id=warning.id,
        page=page,
    )
