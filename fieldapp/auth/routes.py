"""Login and logout pages."""

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from fieldapp import events
from fieldapp.auth import bp
from fieldapp.auth.forms import LoginForm
from fieldapp.auth.sessions import LoginError, authenticate, end_all_sessions
from fieldapp.extensions import db, limiter


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


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data)
        except LoginError as exc:
            error = str(exc)
        else:
            session.clear()
            session.permanent = True
            login_user(user)
            target = _safe_next(request.args.get("next"))
            return redirect(target or home_for(user))
    status = 401 if error else 200
    return render_template("auth/login.html", form=form, error=error), status


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
    events.record("logout", actor=current_user)
    db.session.commit()
    return _logged_out_response()


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """End this user's sessions on every device, e.g. after a phone was lost."""
    end_all_sessions(current_user)
    events.record("logout_everywhere", actor=current_user)
    db.session.commit()
    return _logged_out_response()
