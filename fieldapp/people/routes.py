"""People pages: the list, one person, and the changes a chief or admin may make."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from fieldapp import clock, personnel
from fieldapp.access import roles_required
from fieldapp.auth import throttle
from fieldapp.extensions import db
from fieldapp.labels import ROLES, label
from fieldapp.models import Station, User
from fieldapp.people import bp
from fieldapp.people.forms import ActionForm, ConfirmForm, RoleForm
from fieldapp.refusals import Refusal

LIST_LIMIT = 200
NO_STORE = {"Cache-Control": "no-store"}
VALID_HOURS = int(personnel.ONE_TIME_PASSWORD_VALID.total_seconds() // 3600)


def _person(user_id: int) -> User:
    """The person of the URL, if the caller may see them; others' people are 404."""
    person = db.session.get(User, user_id)
    if person is None or not personnel.can_see(current_user, person):
        abort(404)
    return person


def _managed(user_id: int) -> User:
    person = _person(user_id)
    if not personnel.can_manage(current_user, person):
        abort(403)
    return person


def _back(person: User, error: Refusal | None = None):
    if error is not None:
        if error.code == "forbidden":
            abort(403)
        flash(error.message(), "error")
    return redirect(url_for("people.person", user_id=person.id))


def _search_args() -> tuple[int | None, str]:
    station = request.args.get("station", "")
    station_id = int(station) if station.isascii() and station.isdigit() else None
    if station_id is not None and station_id > 2**31 - 1:
        station_id = None
    search = "".join(c for c in request.args.get("q", "")[:64] if c.isprintable()).strip()
    return station_id, search


@bp.get("/")
@roles_required("chief")
def index():
    """Everyone the caller may manage, with what holds them back (throttled, deactivated)."""
    station_id, search = _search_args()
    query = personnel.people_query(current_user, station_id, search).limit(LIST_LIMIT + 1)
    people = list(db.session.scalars(query))
    stations = db.session.scalars(sa.select(Station).order_by(Station.code)).all()
    return (
        render_template(
            "people/index.html",
            people=people[:LIST_LIMIT],
            more=len(people) > LIST_LIMIT,
            waits=throttle.account_waits([p.username for p in people], clock.now()),
            stations=stations if current_user.is_admin else [],
            station_id=station_id,
            search=search,
        ),
        200,
        NO_STORE,
    )


@bp.get("/<int:user_id>")
@roles_required("chief")
def person(user_id: int):
    """One person: their account's state, what they hold, and the changes allowed."""
    person = _person(user_id)
    roles = personnel.assignable_roles(current_user, person)
    role_form = RoleForm(seen_role=person.role, role=person.role).offer(roles)
    return (
        render_template(
            "people/person.html",
            person=person,
            manage=personnel.can_manage(current_user, person),
            wait=throttle.account_waits([person.username], clock.now()).get(person.username),
            load=personnel.workload(person),
            role_form=role_form if roles else None,
            action_form=ActionForm(),
        ),
        200,
        NO_STORE,
    )


@bp.post("/<int:user_id>/unlock")
@roles_required("chief")
def unlock(user_id: int):
    person = _managed(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    personnel.unlock(current_user, person)
    db.session.commit()
    flash(
        _("Failed logins forgotten: %(name)s can log in again now.", name=person.display_name),
        "success",
    )
    return _back(person)


@bp.route("/<int:user_id>/reset-password", methods=["GET", "POST"])
@roles_required("chief")
def reset_password(user_id: int):
    """Confirm, then show a one-time password once; the person must change it at login."""
    person = _managed(user_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _confirm_page("reset", person, form)
    try:
        password = personnel.reset_password(current_user, person, form.version.data)
    except Refusal as error:
        db.session.rollback()
        return _back(person, error)
    db.session.commit()
    return (
        render_template(
            "people/one_time_password.html",
            person=person,
            password=password,
            valid_hours=VALID_HOURS,
        ),
        200,
        NO_STORE,
    )


@bp.route("/<int:user_id>/deactivate", methods=["GET", "POST"])
@roles_required("chief")
def deactivate(user_id: int):
    """Confirm, then close the account: sessions end, pending offers move on."""
    person = _managed(user_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _confirm_page("deactivate", person, form)
    try:
        load = personnel.deactivate(current_user, person)
    except Refusal as error:
        db.session.rollback()
        return _back(person, error)
    db.session.commit()
    flash(_("%(name)s is deactivated and logged out.", name=person.display_name), "success")
    if load.open_warnings:
        flash(
            _(
                "They still own %(n)d open warnings: reassign them on the board.",
                n=len(load.open_warnings),
            ),
            "error",
        )
    return _back(person)


def _confirm_page(action: str, person: User, form: ConfirmForm):
    status = 400 if request.method == "POST" else 200
    form.confirm.data, form.version.data = "yes", person.session_version
    page = render_template(
        "people/confirm.html",
        action=action,
        person=person,
        form=form,
        load=personnel.workload(person),
        stale=request.method == "POST",
        valid_hours=VALID_HOURS,
    )
    return page, status, NO_STORE


@bp.post("/<int:user_id>/reactivate")
@roles_required("chief")
def reactivate(user_id: int):
    person = _managed(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        personnel.reactivate(current_user, person)
    except Refusal as error:
        db.session.rollback()
        return _back(person, error)
    db.session.commit()
    flash(_("%(name)s can log in again.", name=person.display_name), "success")
    return _back(person)


@bp.post("/<int:user_id>/role")
@roles_required("chief")
def change_role(user_id: int):
    person = _managed(user_id)
    form = RoleForm().offer(personnel.assignable_roles(current_user, person))
    if not form.validate_on_submit():
        flash(_("Choose one of the roles offered."), "error")
        return _back(person)
    try:
        personnel.change_role(current_user, person, form.role.data, form.seen_role.data)
    except Refusal as error:
        db.session.rollback()
        return _back(person, error)
    db.session.commit()
    flash(
        _("%(name)s is now: %(role)s.", name=person.display_name, role=label(ROLES, person.role)),
        "success",
    )
    return _back(person)
