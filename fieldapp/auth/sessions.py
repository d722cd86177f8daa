"""Flask-Login wiring, login with lockout after repeated failures."""

from datetime import timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_login import LoginManager

from fieldapp import clock, events
from fieldapp.auth.passwords import hash_password, verify_password
from fieldapp.extensions import db
from fieldapp.models import User

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
# Verifying against a dummy hash keeps a wrong username as slow as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password-0")


def init_login_manager(login_manager: LoginManager) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_key: str) -> User | None:
        user_id, _sep, version = user_key.partition(":")
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or str(user.session_version) != version:
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import abort, redirect, request, url_for

        if request.path.startswith("/api/"):
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path))


class LoginError(Exception):
    """Login refused; the message is safe to show."""


def authenticate(username: str, password: str) -> User:
    """Check credentials, count failures, lock after MAX_FAILURES; commit the bookkeeping."""
    now = clock.now()
    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        events.record("login_failed", reason="unknown_user")
        db.session.commit()
        raise LoginError(_("Wrong username or password."))
    if user.locked_until and user.locked_until > now:
        events.record("login_failed", actor=user, reason="locked")
        db.session.commit()
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginError(
            _(
                "Too many failed attempts: this account is locked for %(m)d more minutes. "
                "Ask your station chief if you need it sooner.",
                m=minutes,
            )
        )
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        reason = "bad_password"
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            reason = "locked_now"
        events.record("login_failed", actor=user, reason=reason)
        db.session.commit()
        if reason == "locked_now":
            raise LoginError(
                _("Too many failed attempts: this account is locked for %(m)d minutes.", m=15)
            )
        raise LoginError(_("Wrong username or password."))
    if not user.active:
        raise LoginError(_("This account is disabled."))
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    events.record("login", actor=user)
    db.session.commit()
    return user


def end_all_sessions(user: User) -> None:
    """Invalidate every session of `user`: their cookies carry the old session_version.

    An UPDATE with an expression, so two devices doing it at once both count.
    """
    db.session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user)
