"""Officer pages: thin views over fieldapp.fieldwork; every change goes through fieldapp.sync."""

import uuid

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from fieldapp import (
    access,
    clock,
    fieldread,
    fieldwork,
    helping,
    nearest,
    resident_reads,
    sync,
)
from fieldapp import talking_points as talking_points_rules
from fieldapp.access import roles_required
from fieldapp.extensions import db
from fieldapp.field import bp, pages
from fieldapp.field.forms import (
    FORM_FIELDS,
    client_strings,
    entry_from_form,
    field_problems,
    kept_values,
)
from fieldapp.models import FRAUD_TYPES


def _new_id() -> str:
    return str(uuid.uuid4())


@bp.get("/")
@roles_required("officer", "auxiliary")
def index():
    """Offers waiting for an answer (with a countdown), my open warnings, follow-ups."""
    now = clock.now()
    return render_template(
        "field/index.html",
        offers=fieldread.pending_offers(current_user),
        owned=fieldread.my_open_warnings(current_user),
        follow_ups=fieldread.follow_ups(current_user),
        now=now,
        new_id=_new_id,
        distance_to=fieldread.distance_to,
        offers_to_me=current_user.role in nearest.eligible_roles(current_user.station),
    )


def _render_warning(w, problem: dict | None = None, status: int = 200):
    """The warning page (every rendering of it is an audited read of the resident's data)."""
    resident_reads.record(w, current_user, "field")
    context = pages.warning_context(w, current_user, clock.now())
    page = render_template("field/warning.html", new_id=_new_id, problem=problem, **context)
    db.session.commit()  # the read's audit event
    return page, status


@bp.get("/w/<int:warning_id>")
@login_required
@resident_reads.limited
def warning(warning_id: int):
    """Everything an officer needs about one warning, and the forms to act on it."""
    w = access.visible_warning(warning_id, current_user)
    if w is None:
        abort(404)
    return _render_warning(w)


@bp.post("/w/<int:warning_id>/entry")
@roles_required("officer", "auxiliary")
def submit_entry(warning_id: int):
    """The no-JavaScript path: one form, one sync entry, applied and committed by fieldapp.sync.

    Saved: back to the page with a receipt where the form was. Refused: the page again, the
    values kept and the message at the field that caused it.
    """
    w = access.visible_warning(warning_id, current_user)
    if w is None:
        abort(404)
    entry = entry_from_form(request.form, warning_id)
    result = sync.apply_entry(entry, current_user._get_current_object())
    kind, slot = entry["kind"], _RECEIPT_SLOTS.get(entry["kind"], "receipt-top")
    if result["status"] == "rejected" and request.form.get("next") != "confirmations":
        return _refused_page(w, kind, slot, result)
    ok = result["status"] in ("applied", "duplicate")
    if ok:
        flash(f"{result['detail']} · {format_datetime(clock.now(), 'HH:mm:ss')}", f"receipt:{slot}")
    else:
        flash(result["detail"], f"refused:{slot}")
    if request.form.get("next") == "confirmations":
        return redirect(url_for("field.confirmations"))
    if kind == "decline":
        return redirect(url_for("field.index"))
    return redirect(url_for("field.warning", warning_id=warning_id, _anchor=slot))


def _refused_page(w, kind: str, slot: str, result: dict):
    """Nothing changed (422): a form's messages at its fields with every value kept; a
    one-button form's message where its receipt goes."""
    if kind not in FORM_FIELDS or not _form_shown(w, kind):
        flash(result["detail"], f"refused:{slot}")
        return _render_warning(w, None, 422)
    errors, message = field_problems(kind, result)
    problem = {"kind": kind, "errors": errors, "message": message}
    return _render_warning(w, problem | {"kept": kept_values(request.form)}, 422)


def _form_shown(w, kind: str) -> bool:
    """Whether the page has the form of `kind` for the current user (as the template decides)."""
    user = current_user._get_current_object()
    works = fieldwork.works_on(w, user)
    if kind == "resolve":
        return works and fieldwork.may_resolve(w, user)
    return works and w.is_open


# Where the no-JavaScript path shows a saved entry's receipt (field.js uses data-receipt).
_RECEIPT_SLOTS = {
    "attempt": "receipt-attempt",
    "help": "receipt-help",
    "confirm": "receipt-contacts",
}


@bp.get("/confirmations")
@roles_required("officer", "auxiliary")
def confirmations():
    """Contacts of the station that wait for a colleague's confirmation."""
    return render_template(
        "field/confirmations.html",
        attempts=fieldread.awaiting_confirmation(current_user),
        new_id=_new_id,
    )


@bp.get("/settings")
@login_required
def settings():
    """The officer's settings: test alert, offline queue."""
    return render_template("field/settings.html")


@bp.get("/csrf")
@login_required
def csrf_token():
    """A fresh CSRF token for the offline queue when the cached page's token has expired."""
    response = jsonify({"token": generate_csrf()})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/talking-points", methods=["GET", "POST"])
@roles_required("admin")
def talking_points():
    """An admin edits the persuasion aid for each fraud type, in Chinese and English."""
    rows = talking_points_rules.all_rows()
    errors: dict[str, str] = {}
    if request.method == "POST":
        texts = {t: (request.form.get(f"{t}-zh"), request.form.get(f"{t}-en")) for t in FRAUD_TYPES}
        errors = talking_points_rules.save(rows, texts, current_user)
        if not errors:
            flash(_("Talking points saved."), "success")
            return redirect(url_for("field.talking_points"))
    return render_template(
        "field/talking_points.html", rows=rows, fraud_types=FRAUD_TYPES, errors=errors
    ), (422 if errors else 200)


@bp.app_template_global()
def field_client_strings() -> dict:
    return client_strings()


@bp.app_template_global()
def may_join(warning) -> bool:
    """For templates: may the current user join `warning` now (never with an offer pending)?"""
    return helping.may_join(warning, current_user._get_current_object())


@bp.app_template_global()
def local_input(value) -> str:
    """A datetime as a datetime-local input value in the display zone."""
    return format_datetime(value, "yyyy-MM-dd'T'HH:mm") if value else ""
