"""POST/GET /api/v1/warnings: the anti-fraud centre's side of the contract."""

from functools import wraps

from flask import current_app, jsonify, request, url_for
from flask_babel import gettext as _

from fieldapp import express, tokens, warning_intake
from fieldapp.api import bp
from fieldapp.api.openapi import operation, unprocessable
from fieldapp.api.schemas import WarningCreated, WarningFeedback
from fieldapp.extensions import db, limiter
from fieldapp.feedback import feedback
from fieldapp.models import Warning
from fieldapp.refusals import Refusal
from fieldapp.warning_intake import WarningIn


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _rate_key() -> str:
    # Per token, so one noisy client cannot starve the others; unauthenticated by address.
    bearer = _bearer()
    return (
        "tok:" + tokens.hash_token(bearer)[:16] if bearer else "ip:" + (request.remote_addr or "")
    )


def token_required(view):
    """401 without a valid intake token; else the view gets it as `token`."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        token = tokens.find_token(_bearer())
        if token is None:
            response = jsonify({"error": _("A valid bearer token is required.")})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="fieldapp"'
            return response
        return view(*args, token=token, **kwargs)

    return wrapped


_limit = limiter.limit(lambda: current_app.config["INTAKE_RATE_LIMIT"], key_func=_rate_key)


def _created_body(result: warning_intake.IntakeResult) -> dict:
    warning = result.warning
    body = {
        "id": warning.id,
        "status": warning.status,
        "url": url_for("api.get_warning", warning_id=warning.id, _external=True),
    }
    if not result.created:
        body["duplicate"] = True
        body["conflict"] = result.conflict
        body["message"] = (
            _(
                "A warning with this source_ref was already received with different content; "
                "the first one stands and this one was not applied."
            )
            if result.conflict
            else _("This warning was already received; nothing new was created.")
        )
    return body


@bp.post("/warnings")
@_limit
@token_required
@operation(
    body=WarningIn,
    out=WarningCreated,
    status=(201, 200),
    answers=(429,),
    auth="bearer",
    max_bytes="INTAKE_MAX_BYTES",
    links={
        "GetWarning": {
            "operationId": "getWarning",
            "parameters": {"warning_id": "$response.body#/id"},
        }
    },
)
def create_warning(token, data: WarningIn):
    """Send an early warning

    201 for a new warning; 200 with the same body (`duplicate`, and `conflict` when the content
    differs) for a source_ref this token already sent.
    """
    try:
        result = warning_intake.receive(data, token)
    except Refusal as exc:
        db.session.rollback()
        return unprocessable(exc.errors())
    # Built before the commit, which would expire the row and cost a reload.
    body = _created_body(result)
    fast = express.prepare(result.push)
    db.session.commit()
    response = jsonify(body)
    response.status_code = 201 if result.created else 200
    return express.send_after(response, fast)


@bp.get("/warnings/<int:warning_id>")
@_limit
@token_required
@operation(out=WarningFeedback, answers=(429,), auth="bearer")
def get_warning(warning_id: int, token):
    """Feedback on a warning: status, officer, attempts, outcome"""
    warning = db.session.get(Warning, warning_id)
    visible = warning is not None and (
        warning.token_id == token.id
        or token.station_id is None
        or warning.station_id == token.station_id
    )
    if not visible:
        return jsonify({"error": _("Not found.")}), 404
    return jsonify(feedback(warning))
