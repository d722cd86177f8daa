"""Turning the pages' plain HTML forms into sync entries (the no-JavaScript path), and a
refused entry's answer back into messages at the fields that caused it.

With JavaScript the pages put the same entries in the offline queue and send them through
/api/v1/sync; without it the form posts here. Either way an entry carries a client_id, so a
double submit records once. A question left unanswered stays unanswered: nothing here turns
a missing answer into "no".
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l

from fieldapp.sync import KINDS

# The fields of each form, in page order: where a refusal is shown and what is kept.
FORM_FIELDS = {
    "attempt": ("reached", "channel", "attempted_at", "note"),
    "resolve": ("outcome", "loss_amount", "app_installed", "follow_up_at", "note"),
}
# A question with no answer is asked again in words that say what to do.
CHOICE_MESSAGES = {
    "outcome": _l("Choose the outcome."),
    "channel": _l("Tap how you tried to reach the person."),
}


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


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def entry_from_form(form, warning_id: int) -> dict:
    """The sync entry a submitted form describes."""
    kind = form.get("kind", "")
    data: dict = {}
    if kind == "attempt":
        data = {
            "channel": form.get("channel") or None,
            "reached": _yes_no(form.get("reached")),
            "attempted_at": local_to_utc_iso(form.get("attempted_at")),
            "note": form.get("note") or None,
        }
    elif kind == "resolve":
        data = {
            "outcome": form.get("outcome") or None,
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


def field_problems(kind: str, result: dict) -> tuple[dict[str, str], str | None]:
    """({field: message}, message for the whole form) for a refused entry of form `kind`:
    sync names the data field of each refusal it can tie to one (fieldapp.refusals)."""
    fields = FORM_FIELDS.get(kind, ())
    out: dict[str, str] = {}
    for key, message in (result.get("errors") or {}).items():
        name = key.removeprefix("data.")
        if name not in fields:
            continue
        missing = message == field_error_text("missing") and name in CHOICE_MESSAGES
        out[name] = str(CHOICE_MESSAGES[name]) if missing else message
    return out, None if out else result.get("detail")


def kept_values(form) -> dict:
    """What the officer typed, to fill the form again after a refusal."""
    return {
        name: form.get(name, "")
        for name in (
            "reached",
            "outcome",
            "loss_amount",
            "app_installed",
            "follow_up_at",
            "attempted_at",
            "note",
            "channel",
        )
    }


def field_error_text(kind: str) -> str:
    """The API's sentence for a pydantic error type (to recognise a missing answer)."""
    from fieldapp.validation import message_for

    return message_for({"type": kind})


def client_strings() -> dict:
    """What entries.js needs to check a form before it sends, in the page's language: the
    same sentences the server answers with (fieldapp.refusals)."""
    from fieldapp import labels, refusals

    choice = {name: str(message) for name, message in CHOICE_MESSAGES.items()}
    choice["reached"] = refusals.message("reached_required")
    return {
        "choice": choice,
        "code_messages": {
            code: refusals.message(code)
            for code in ("loss_required", "visit_required", "contact_required")
        },
        "channels": {code: str(text) for code, text in labels.CHANNELS.items()},
        "outcomes": {code: str(text) for code, text in labels.OUTCOMES.items()},
        "reached_yes": str(_l("reached")),
        "reached_no": str(_l("not reached")),
        "problem_title": str(_l("There is a problem")),
    }
