"""Home redirect, language switch, PWA files, health checks."""

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, jsonify, redirect, request, send_from_directory, url_for
from flask_babel import gettext as _
from flask_login import current_user

from fieldapp import clock
from fieldapp.auth.routes import _safe_next, home_for
from fieldapp.core import bp
from fieldapp.extensions import db
from fieldapp.i18n import LANG_COOKIE
from fieldapp.models import WorkerHeartbeat


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.post("/lang")
def set_language():
    """Remember the chosen language in a cookie and, when logged in, on the user."""
    lang = request.form.get("lang", "")
    if lang not in current_app.config["LANGUAGES"]:
        return jsonify({"errors": {"lang": _("Unknown language.")}}), 422
    if current_user.is_authenticated:
        current_user.locale = lang
        db.session.commit()
    target = _safe_next(request.form.get("next")) or url_for("core.index")
    response = redirect(target)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        httponly=True,
        secure=request.is_secure,
    )
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, served from the root so its scope covers the whole app."""
    response = send_from_directory(current_app.static_folder, "sw.js", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    response = send_from_directory(
        current_app.static_folder, "manifest.webmanifest", mimetype="application/manifest+json"
    )
    return response


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers and a worker has been seen recently."""
    checks = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks["database"] = "error"
        return jsonify({"status": "error", "checks": checks}), 503
    newest = db.session.scalar(sa.select(sa.func.max(WorkerHeartbeat.seen_at)))
    fresh = newest is not None and clock.now() - newest < timedelta(seconds=60)
    checks["worker"] = "ok" if fresh else "stale"
    status = 200 if fresh else 503
    return jsonify({"status": "ok" if fresh else "error", "checks": checks}), status
