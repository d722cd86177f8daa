"""flask commands for people management: the same changes as the people pages, for an operator.

The command line acts as the system (its events carry no actor); it may manage anyone, but
it too keeps the last active admin.
"""

import click
import sqlalchemy as sa
from flask.cli import with_appcontext
from flask_babel import force_locale

from fieldapp import clock, personnel
from fieldapp.auth import throttle
from fieldapp.extensions import db
from fieldapp.models import ROLES, Station, User
from fieldapp.refusals import Refusal


def _user(username: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="--username")
    return user


def _run(change, *args):
    try:
        result = change(None, *args)
    except Refusal as error:
        db.session.rollback()
        with force_locale("en"):  # the operator's console speaks English
            raise click.ClickException(error.message()) from error
    db.session.commit()
    return result


username_option = click.option("--username", required=True, help="The account to change.")


@click.command("list-users")
@click.option("--station", "station_code", default=None, help="Only this station's people.")
@with_appcontext
def list_users(station_code):
    """List accounts: username, role, station, and what holds them back."""
    query = sa.select(User, Station.code).join(Station).order_by(Station.code, User.username)
    if station_code:
        query = query.where(Station.code == station_code)
    rows = db.session.execute(query).all()
    waits = throttle.account_waits([u.username for u, _code in rows], clock.now())
    for user, code in rows:
        flags = [
            "inactive" if not user.active else "",
            f"throttled-until={waits[user.username]:%Y-%m-%dT%H:%MZ}"
            if user.username in waits
            else "",
            "one-time-password" if user.must_change_password else "",
        ]
        click.echo("\t".join([user.username, user.role, code, " ".join(f for f in flags if f)]))


@click.command("unlock-user")
@username_option
@with_appcontext
def unlock_user(username):
    """Forget a user's failed logins, so they can log in again at once."""
    user = _user(username)
    cleared = _run(personnel.unlock, user)
    click.echo(f"user {user.username} unlocked ({cleared} throttle buckets cleared)")


@click.command("reset-password")
@username_option
@with_appcontext
def reset_password(username):
    """Give a user a one-time password (printed once); they choose their own at first login."""
    user = _user(username)
    password = _run(personnel.reset_password, user)
    hours = int(personnel.ONE_TIME_PASSWORD_VALID.total_seconds() // 3600)
    click.echo(password)
    click.echo(
        f"one-time password for {user.username}, valid {hours} h; they must change it at login",
        err=True,
    )


@click.command("deactivate-user")
@username_option
@with_appcontext
def deactivate_user(username):
    """Close an account: sessions end, off duty, pending offers move on, no new offers."""
    user = _user(username)
    load = _run(personnel.deactivate, user)
    click.echo(f"user {user.username} deactivated")
    if load.open_warnings:
        ids = ", ".join(str(i) for i in load.open_warnings)
        click.echo(f"still owns open warnings {ids}: reassign them on the board", err=True)


@click.command("reactivate-user")
@username_option
@with_appcontext
def reactivate_user(username):
    """Open a deactivated account again."""
    user = _user(username)
    _run(personnel.reactivate, user)
    click.echo(f"user {user.username} reactivated")


@click.command("set-role")
@username_option
@click.option("--role", required=True, type=click.Choice(ROLES))
@with_appcontext
def set_role(username, role):
    """Change a user's role (officer, auxiliary, chief, admin)."""
    user = _user(username)
    _run(personnel.change_role, user, role, user.role)
    click.echo(f"user {user.username} is now {role}")


COMMANDS = (list_users, unlock_user, reset_password, deactivate_user, reactivate_user, set_role)
