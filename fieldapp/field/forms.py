"""Turning the pages' plain HTML forms into sync entries (the no-JavaScript path).

With JavaScript the pages put the same entries in the offline queue and send them through
/api/v1/sync; without it the form posts here. Either way an entry carries a client_id, so a
double submit records once.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from fieldapp.sync import KINDS


def local_to_utc_iso(value: str | None) -> str | None:
    """A datetime-local value ("2026-11-25T10:30") read in the display zone, as RFC 3339."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value  # the sync validation turns it into a clear message
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=ZoneInfo(current_app.config["DISPLAY_TIMEZONE"]))
    return naive.isoformat()


def entry_from_form(form, warning_id: int) -> dict:
    """The sync entry a submitted form describes."""
    kind = form.get("kind", "")
    data: dict = {}
    if kind == "attempt":
        data = {
            "channel": form.get("channel"),
            "reached": form.get("reached") == "yes",
            "attempted_at": local_to_utc_iso(form.get("attempted_at")),
            "note": form.get("note") or None,
        }
    elif kind == "resolve":
        data = {
            "outcome": form.get("outcome"),
            "loss_amount": form.get("loss_amount") or None,
            "app_installed": form.get("app_installed") == "1",
            "follow_up_at": local_to_utc_iso(form.get("follow_up_at")),
            "note": form.get("note") or None,
        }
    elif kind == "confirm":
        data = {"attempt_id": form.get("attempt_id")}
    return {
        "client_id": form.get("client_id", ""),
        "kind": kind if kind in KINDS else "",
        "warning_id": warning_id,
        "data": {k: v for k, v in data.items() if v is not None},
    }
