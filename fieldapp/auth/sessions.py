"""Flask-Login wiring and server-side sessions: logging out ends a session for every copy of
its cookie, and a user who must change their password reaches nothing else first."""

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import abort, current_app, jsonify, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, current_user

from fieldapp import clock
from fieldapp.extensions import db
from fieldapp.models import User, UserSession

SESSION_KEY = "sid"
_MAX_INT = 2**31 - 1
# Reachable while a password change is due: the change itself, leaving, and what pages load.
OPEN_DURING_PASSWORD_CHANGE = {
    "auth.change_password",
    "auth.logout",
    "auth.logout_everywhere",
    "auth.login",
    "core.set_language",
    "core.index",
    "core.manifest",
    "core.service_worker",
    "core.healthz",
    "core.readyz",
    "static",
}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _small_int(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > _MAX_INT:
        return None
    return int(text)


def init_login_manager(login_manager: LoginManager) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_key: str) -> User | None:
        user_id, _sep, version = user_key.partition(":")
        user_id, version = _small_int(user_id), _small_int(version)
        token = session.get(SESSION_KEY)
        if user_id is None or version is None or not isinstance(token, str):
            return None
        return db.session.scalar(
            sa.select(User)
            .join(UserSession, UserSession.user_id == User.id)
            .where(
                User.id == user_id,
                User.session_version == version,
                User.active.is_(True),
                UserSession.token_hash == _digest(token),
                UserSession.ended_at.is_(None),
            )
        )

    @login_manager.unauthorized_handler
    def unauthorized():
        if request.path.startswith("/api/"):
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path))


def start_session(user: User) -> None:
    """Record a new session of `user` and put its token in the (fresh) cookie session."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    db.session.add(UserSession(token_hash=_digest(token), user_id=user.id, created_at=now))
    session[SESSION_KEY] = token
    # Sessions whose cookie has long expired are kept a day for the audit trail, then dropped.
    keep_after = now - current_app.permanent_session_lifetime - timedelta(days=1)
    db.session.execute(sa.delete(UserSession).where(UserSession.created_at < keep_after))


def end_current_session(reason: str) -> None:
    """End the session of this request, wherever its cookie has been copied to."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None))
        .values(ended_at=clock.now(), end_reason=reason)
    )


def end_all_sessions(user: User, reason: str = "logout_everywhere", keep_current=False) -> None:
    """End every session of `user` (all but this request's with `keep_current`).

    The version bump is an UPDATE with an expression, so two devices doing it at once both count.
    """
    ended = sa.update(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)
    )
    token = session.get(SESSION_KEY) if keep_current else None
    if isinstance(token, str):
        ended = ended.where(UserSession.token_hash != _digest(token))
    db.session.execute(ended.values(ended_at=clock.now(), end_reason=reason))
    db.session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user)


def require_password_change():
    """Before each request: a user on a one-time password goes to the change page first."""
    if request.endpoint in OPEN_DURING_PASSWORD_CHANGE or request.endpoint is None:
        return None
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if request.path.startswith("/api/"):
        message = _("Choose a new password before you continue.")
        return jsonify({"error": message, "code": "password_change_required"}), 403
    return redirect(url_for("auth.change_password"))
