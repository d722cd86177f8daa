"""Login, logout and changing one's own password."""

from urllib.parse import urlsplit

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from fieldapp import clock, events
from fieldapp.auth import bp, devices, passwords, sessions, throttle
from fieldapp.auth.forms import ChangePasswordForm, LoginForm
from fieldapp.auth.login import (
    authenticate,
    change_own_password,
    check_current_password,
)
from fieldapp.extensions import db, limiter
from fieldapp.ratelimits import login_flood_limit
from fieldapp.refusals import Refusal


def home_for(user) -> str:
    """Where a user lands after login."""
    if user.role in ("chief", "admin"):
        return url_for("board.index")
    return url_for("field.index")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _refused(form: LoginForm, refusal: Refusal):
    wait_s = refusal.retry_after_s(clock.now())
    html = render_template(
        "auth/login.html", form=form, error=refusal.message(), retry_at=refusal.retry_at
    )
    if not wait_s:
        return html, 401
    return html, 429, {"Retry-After": str(wait_s)}


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_flood_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form, error=None)
    try:
        user = authenticate(form.username.data, form.password.data, request.remote_addr)
    except Refusal as refusal:
        return _refused(form, refusal)
    session.clear()
    session.permanent = True
    login_user(user)
    sessions.start_session(user)
    db.session.commit()
    if user.must_change_password:
        response = redirect(url_for("auth.change_password"))
    else:
        response = redirect(_safe_next(request.args.get("next")) or home_for(user))
    devices.remember(response, throttle.account_key(user.username))
    return response


def _logged_out_response():
    logout_user()
    session.clear()
    response = redirect(url_for("auth.login"))
    # Shared phones: wipe cached pages and stored data of the user who just left.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.post("/logout")
@login_required
def logout():
    sessions.end_current_session("logout")
    events.record("logout", actor=current_user)
    db.session.commit()
    return _logged_out_response()


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """End this user's sessions on every device, e.g. after a phone was lost."""
    sessions.end_all_sessions(current_user)
    events.record("logout_everywhere", actor=current_user)
    db.session.commit()
    return _logged_out_response()


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Choose a new password; required right after logging in with a one-time password."""
    user = current_user._get_current_object()
    form = ChangePasswordForm()
    if user.must_change_password:
        del form.current_password  # they typed the one-time password a moment ago
    if form.validate_on_submit() and _password_change_accepted(user, form):
        change_own_password(user, form.new_password.data)
        login_user(user)  # the cookie carries the new session version
        db.session.commit()
        return redirect(home_for(user))
    page = render_template("auth/change_password.html", form=form, min_length=passwords.MIN_LENGTH)
    return page, 422 if form.errors else 200, {"Cache-Control": "no-store"}


def _password_change_accepted(user, form: ChangePasswordForm) -> bool:
    """Check what the form's validators cannot; a problem goes on its field."""
    new = form.new_password.data
    if form.current_password is not None:
        problem = check_current_password(user, form.current_password.data, request.remote_addr)
        if problem:
            form.current_password.errors.append(problem)
            return False
    if passwords.verify_password(user.password_hash, new):
        problem = _("The new password must differ from the old one.")
    else:
        problem = passwords.password_problem(new, user.username)
    if problem:
        form.new_password.errors.append(problem)
    return problem is None
