"""Officer pages: thin views over fieldapp.fieldwork; every change goes through fieldapp.sync."""

import uuid
from urllib.parse import quote

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from fieldapp import clock, events, fieldwork, sync
from fieldapp.access import roles_required
from fieldapp.extensions import db
from fieldapp.field import bp
from fieldapp.field.forms import entry_from_form
from fieldapp.models import FRAUD_TYPES, Offer, TalkingPoints


def _new_id() -> str:
    return str(uuid.uuid4())


def _map_links(warning) -> dict | None:
    """Amap and Baidu map URIs for the person's position (WGS-84); no tile server needed."""
    if warning.lat is None or warning.lon is None:
        return None
    title = quote(_("Warning location"))
    return {
        "amap": f"https://uri.amap.com/marker?position={warning.lon:.6f},{warning.lat:.6f}"
        f"&name={title}&coordinate=wgs84&callnative=1",
        "baidu": f"https://api.map.baidu.com/marker?location={warning.lat:.6f},{warning.lon:.6f}"
        f"&title={title}&content={title}&coord_type=wgs84&output=html&src=fieldapp",
    }


@bp.get("/")
@roles_required("officer", "auxiliary")
def index():
    """Offers waiting for an answer (with a countdown), my open warnings, follow-ups."""
    now = clock.now()
    return render_template(
        "field/index.html",
        offers=fieldwork.pending_offers(current_user),
        owned=fieldwork.my_open_warnings(current_user),
        follow_ups=fieldwork.follow_ups(current_user),
        now=now,
        new_id=_new_id,
        distance_to=fieldwork.distance_to,
    )


@bp.get("/w/<int:warning_id>")
@login_required
def warning(warning_id: int):
    """Everything an officer needs about one warning, and the forms to act on it."""
    w = fieldwork.visible_warning(warning_id, current_user)
    if w is None:
        abort(404)
    now = clock.now()
    offer = db.session.scalar(
        db.select(Offer).where(
            Offer.warning_id == w.id, Offer.officer_id == current_user.id, Offer.status == "pending"
        )
    )
    return render_template(
        "field/warning.html",
        w=w,
        now=now,
        offer=offer,
        works_on=fieldwork.works_on(w, current_user),
        can_join=w.is_open
        and current_user.role in ("officer", "auxiliary")
        and not fieldwork.works_on(w, current_user),
        distance_m=fieldwork.distance_to(w, current_user),
        maps=_map_links(w),
        visit_required=fieldwork.visit_required(w),
        has_visit=fieldwork.has_reached_visit(w),
        talking_points=fieldwork.talking_points(w.fraud_type, str(get_locale())),
        earlier=fieldwork.earlier_warnings(w, current_user),
        nearby=fieldwork.nearby_same_trick(w, now=now),
        timeline=events.timeline(w.id),
        new_id=_new_id,
    )


@bp.post("/w/<int:warning_id>/entry")
@roles_required("officer", "auxiliary")
def submit_entry(warning_id: int):
    """The no-JavaScript path: one form, one sync entry, applied and committed by fieldapp.sync."""
    if fieldwork.visible_warning(warning_id, current_user) is None:
        abort(404)
    entry = entry_from_form(request.form, warning_id)
    result = sync.apply_entry(entry, current_user._get_current_object())
    ok = result["status"] in ("applied", "duplicate")
    flash(result["detail"], "success" if ok else "error")
    if entry["kind"] in ("accept", "decline") and not (entry["kind"] == "accept" and ok):
        return redirect(url_for("field.index"))
    target = request.form.get("next")
    if target == "confirmations":
        return redirect(url_for("field.confirmations"))
    return redirect(url_for("field.warning", warning_id=warning_id))


@bp.get("/confirmations")
@roles_required("officer", "auxiliary")
def confirmations():
    """Contacts of the station that wait for a colleague's confirmation."""
    return render_template(
        "field/confirmations.html",
        attempts=fieldwork.awaiting_confirmation(current_user),
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
    rows = {r.fraud_type: r for r in db.session.scalars(db.select(TalkingPoints))}
    errors: dict[str, str] = {}
    if request.method == "POST":
        for fraud_type in FRAUD_TYPES:
            zh = (request.form.get(f"{fraud_type}-zh") or "").strip()
            en = (request.form.get(f"{fraud_type}-en") or "").strip()
            if len(zh) > 2000 or len(en) > 2000:
                errors[fraud_type] = _("At most %(n)d characters.", n=2000)
                continue
            if not zh and not en:
                continue
            row = rows.get(fraud_type)
            if row is None:
                row = rows[fraud_type] = TalkingPoints(fraud_type=fraud_type)
                db.session.add(row)
            if (row.text_zh, row.text_en) != (zh, en):
                row.text_zh, row.text_en = zh, en
                row.updated_at = clock.now()
                row.updated_by_id = current_user.id
                events.record("talking_points_edited", actor=current_user, fraud_type=fraud_type)
        if errors:
            db.session.rollback()
        else:
            db.session.commit()
            flash(_("Talking points saved."), "success")
            return redirect(url_for("field.talking_points"))
    return render_template(
        "field/talking_points.html", rows=rows, fraud_types=FRAUD_TYPES, errors=errors
    ), (422 if errors else 200)


_EVENT_LABELS = {
    "received": _l("Warning received"),
    "offered": _l("Offered to an officer"),
    "accepted": _l("Accepted"),
    "declined": _l("Declined"),
    "offer_expired": _l("Offer timed out"),
    "unassigned": _l("Nobody available"),
    "reassigned": _l("Reassigned by the chief"),
    "attempt": _l("Contact attempt"),
    "confirmed": _l("Contact confirmed"),
    "resolved": _l("Closed with an outcome"),
    "help_requested": _l("Help requested"),
    "joined": _l("A colleague joined"),
    "follow_up_done": _l("Follow-up done"),
}


@bp.app_template_global()
def event_label(kind: str) -> str:
    return str(_EVENT_LABELS.get(kind, kind))


@bp.app_template_global()
def local_input(value) -> str:
    """A datetime as a datetime-local input value in the display zone."""
    return format_datetime(value, "yyyy-MM-dd'T'HH:mm") if value else ""
