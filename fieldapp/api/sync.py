"""POST /api/v1/sync: the officer's device sends its queued changes (see /api/v1/openapi.json)."""

from flask import jsonify
from flask_login import current_user

from fieldapp import sync
from fieldapp.access import roles_required
from fieldapp.api import bp
from fieldapp.api.openapi import operation


@bp.post("/sync")
@roles_required("officer", "auxiliary")
@operation(body=sync.SyncIn, out=sync.SyncOut, answers=(403,))
def sync_entries(data: sync.SyncIn):
    """Send the device's queued changes; each is applied at most once

    Entries are SyncEntry objects; `data` is AttemptData (attempt), ConfirmData (confirm),
    ResolveData (resolve) or empty (accept, decline, help, join, followup). Each entry is
    checked, applied and committed on its own and gets its own result, in order: whatever goes
    wrong with one entry (a malformed one included) is that entry's result, never the batch's.
    A client_id seen before answers `duplicate` with the same detail, and so does an attempt
    identical to one recorded in the last 10 s (same officer, warning, channel, reached); a
    conflict (reassigned, already resolved) is answered again unchanged on replay. A
    `rejected` entry changed nothing and is not remembered: `errors` names the field it
    concerns, `retry: true` says the server failed for a passing reason and the same entry
    may be sent again. Attempts need `reached`; times from the device must lie within the
    warning's life (from its receipt to now, give or take the allowed clock skew); `persuaded`
    needs a reached contact.
    """
    # Each entry commits on its own inside apply_batch (see fieldapp/sync.py for why).
    results = sync.apply_batch(data.entries, current_user._get_current_object())
    return jsonify({"results": results})
