"""POST/GET /api/v1/warnings: the anti-fraud centre's side of the contract."""

from flask import current_app, g, jsonify, request, url_for
from flask_babel import gettext as _
from pydantic import ValidationError

from fieldapp import express, tokens, warning_intake
from fieldapp.api import bp
from fieldapp.api.errors import field_errors
from fieldapp.api.schemas import WarningIn
from fieldapp.extensions import csrf, db, limiter
from fieldapp.models import Warning


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


def _unauthorized():
    response = jsonify({"error": _("A valid bearer token is required.")})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="fieldapp"'
    return response


def _require_token():
    token = tokens.find_token(_bearer())
    if token is not None:
        g.intake_token = token
    return token


def _unprocessable(errors: dict[str, str]):
    return jsonify({"errors": errors}), 422


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
@csrf.exempt
@limiter.limit(lambda: current_app.config["INTAKE_RATE_LIMIT"], key_func=_rate_key)
def create_warning():
    """Receive one warning from the anti-fraud centre."""
    token = _require_token()
    if token is None:
        return _unauthorized()
    request.max_content_length = current_app.config["INTAKE_MAX_BYTES"]
    raw = request.get_data(cache=True)  # raises 413 past the limit
    if not request.is_json:
        return _unprocessable({"body": _("Send JSON with Content-Type: application/json.")})
    try:
        data = WarningIn.model_validate_json(raw or b"")
    except ValidationError as exc:
        return _unprocessable(field_errors(exc))
    try:
        result = warning_intake.receive(data, token)
    except warning_intake.IntakeError as exc:
        db.session.rollback()
        return _unprocessable(exc.errors)
    # Built before the commit, which would expire the row and cost a reload.
    body = _created_body(result)
    fast = express.prepare(result.push)
    db.session.commit()
    response = jsonify(body)
    response.status_code = 201 if result.created else 200
    return express.send_after(response, fast)


def feedback(warning: Warning) -> dict:
    """What the centre learns about a warning: status, officer, attempts, outcome."""
    officer = warning.owner
    outcome = warning.outcome
    return {
        "id": warning.id,
        "source_ref": warning.source_ref,
        "status": warning.status,
        "station_code": warning.station.code,
        "received_at": warning.received_at.isoformat(),
        "accepted_at": warning.accepted_at.isoformat() if warning.accepted_at else None,
        "first_contact_at": warning.first_contact_at.isoformat()
        if warning.first_contact_at
        else None,
        "resolved_at": warning.resolved_at.isoformat() if warning.resolved_at else None,
        "officer": {"id": officer.id, "display_name": officer.display_name} if officer else None,
        "attempts": [
            {
                "channel": a.channel,
                "reached": a.reached,
                "attempted_at": a.attempted_at.isoformat(),
                "confirmed": bool(a.confirmations),
            }
            for a in warning.attempts
        ],
        "outcome": {
            "outcome": outcome.outcome,
            "recorded_at": outcome.recorded_at.isoformat(),
            "app_installed": outcome.app_installed,
            "loss_amount": float(outcome.loss_amount) if outcome.loss_amount is not None else None,
            "defrauded_after": outcome.defrauded_after,
            "later_loss_amount": float(outcome.later_loss_amount)
            if outcome.later_loss_amount is not None
            else None,
        }
        if outcome
        else None,
    }


@bp.get("/warnings/<int:warning_id>")
@limiter.limit(lambda: current_app.config["INTAKE_RATE_LIMIT"], key_func=_rate_key)
def get_warning(warning_id: int):
    """Feedback for the centre on one of its warnings."""
    token = _require_token()
    if token is None:
        return _unauthorized()
    warning = db.session.get(Warning, warning_id)
    visible = warning is not None and (
        warning.token_id == token.id
        or token.station_id is None
        or warning.station_id == token.station_id
    )
    if not visible:
        return jsonify({"error": _("Not found.")}), 404
    return jsonify(feedback(warning))


def _document() -> None:
    from fieldapp.api import openapi
    from fieldapp.api.schemas import ErrorBody, WarningCreated, WarningFeedback

    errors = openapi.json_body(ErrorBody, "bad input, one message per field")
    plain = {
        "description": "error",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
            }
        },
    }
    openapi.register(
        "/api/v1/warnings",
        "post",
        {
            "summary": "Send an early warning",
            "operationId": "createWarning",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, **openapi.json_body(WarningIn)},
            "responses": {
                "201": openapi.json_body(WarningCreated, "created"),
                "200": openapi.json_body(WarningCreated, "this source_ref was already received"),
                "401": plain,
                "413": plain,
                "422": errors,
                "429": plain,
            },
        },
    )
    openapi.register(
        "/api/v1/warnings/{warning_id}",
        "get",
        {
            "summary": "Feedback on a warning: status, officer, attempts, outcome",
            "operationId": "getWarning",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "warning_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "responses": {
                "200": openapi.json_body(WarningFeedback, "the warning"),
                "401": plain,
                "404": plain,
                "429": plain,
            },
        },
    )


_document()
