"""Who may see and change what: one decorator for roles, one query filter for stations."""

from functools import wraps

import sqlalchemy as sa
from flask import abort
from flask_login import current_user, login_required

from fieldapp.extensions import db
from fieldapp.models import User, Warning


def roles_required(*roles: str):
    """Allow the view only to logged-in users holding one of `roles` (admin always passes)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles and current_user.role != "admin":
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def visible_warning(warning_id: int, user: User | None = None) -> Warning | None:
    """The warning if `user` may see it, else None: another station's warning is "not found"
    (callers answer 404, never 403), so ids do not leak existence."""
    warning = db.session.get(Warning, warning_id)
    if warning is None or not can_see_station(warning.station_id, user):
        return None
    return warning


def station_scope(column, user: User | None = None):
    """A WHERE clause limiting `column` (a station_id column) to what `user` may see."""
    user = user or current_user
    if user.is_admin:
        return sa.true()
    return column == user.station_id


def can_see_station(station_id: int | None, user: User | None = None) -> bool:
    """True when `user` may see data of `station_id`."""
    user = user or current_user
    return user.is_admin or (station_id is not None and station_id == user.station_id)
