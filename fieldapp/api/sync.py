"""POST /api/v1/sync: the officer's device sends its queued changes (CONTRACT.md)."""

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import ValidationError

from fieldapp import sync
from fieldapp.access import roles_required
from fieldapp.api import bp
from fieldapp.api.errors import field_errors


@bp.post("/sync")
@roles_required("officer", "auxiliary")
def sync_entries():
    """Apply each entry at most once; one result per entry, in order."""
    if not request.is_json:
        return jsonify(
            {"errors": {"body": _("Send JSON with Content-Type: application/json.")}}
        ), 422
    try:
        body = sync.SyncIn.model_validate_json(request.get_data() or b"")
    except ValidationError as exc:
        return jsonify({"errors": field_errors(exc)}), 422
    # Each entry commits on its own inside apply_batch (see fieldapp/sync.py for why).
    results = sync.apply_batch(body.entries, current_user._get_current_object())
    return jsonify({"results": results})


def _document() -> None:
    from fieldapp.api import openapi
    from fieldapp.api.schemas import ErrorBody

    openapi.ref(sync.SyncEntry)
    openapi.ref(sync.AttemptData)
    openapi.ref(sync.ConfirmData)
    openapi.ref(sync.ResolveData)
    openapi.register(
        "/api/v1/sync",
        "post",
        {
            "summary": "Send the device's queued changes; each is applied at most once",
            "description": "Entries are SyncEntry objects; `data` is AttemptData (attempt), "
            "ConfirmData (confirm), ResolveData (resolve) or empty (accept, decline, help, "
            "join, followup). Each entry is applied and committed on its own. A client_id seen "
            "before answers `duplicate` with the same detail; a conflict (reassigned, already "
            "resolved) is answered again unchanged on replay.",
            "operationId": "sync",
            "security": [{"session": []}],
            "parameters": [
                {
                    "name": "X-CSRFToken",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": {"required": True, **openapi.json_body(sync.SyncIn)},
            "responses": {
                "200": openapi.json_body(sync.SyncOut, "one result per entry, in order"),
                "400": {"description": "missing or expired CSRF token"},
                "401": {"description": "not logged in"},
                "403": {"description": "not an officer or auxiliary"},
                "422": openapi.json_body(ErrorBody, "the body is not {entries: [...]}"),
            },
        },
    )


_document()
