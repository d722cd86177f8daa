"""flask commands: stations, users, tokens, keys, demo data, and the one-command start."""

import contextlib
import os
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from fieldapp import outbound_rule, tokens, vapid
from fieldapp.auth.passwords import hash_password, password_problem
from fieldapp.extensions import db
from fieldapp.models import ROLES, Station, User


def _station(code: str) -> Station:
    station = db.session.scalar(sa.select(Station).where(Station.code == code))
    if station is None:
        raise click.BadParameter(f"no station with code {code!r}", param_hint="--station")
    return station


@click.command("create-station")
@click.option("--code", required=True, help="Short unique code, e.g. CG.")
@click.option("--name", required=True, help="Display name.")
@click.option("--lat", required=True, type=click.FloatRange(-90, 90))
@click.option("--lon", required=True, type=click.FloatRange(-180, 180))
@click.option("--ack-timeout-s", default=90, show_default=True, type=click.IntRange(10, 3600))
@click.option("--receipt-timeout-s", default=20, show_default=True, type=click.IntRange(5, 600))
@click.option("--contact-target-s", default=300, show_default=True, type=click.IntRange(60, 86400))
@click.option("--auxiliaries-take-offers/--no-auxiliaries-take-offers", default=False)
@with_appcontext
def create_station(
    code,
    name,
    lat,
    lon,
    ack_timeout_s,
    receipt_timeout_s,
    contact_target_s,
    auxiliaries_take_offers,
):
    """Add a station."""
    code = code.strip()
    if not code or len(code) > 32:
        raise click.BadParameter("1 to 32 characters", param_hint="--code")
    if not name.strip() or len(name) > 100:
        raise click.BadParameter("1 to 100 characters", param_hint="--name")
    if db.session.scalar(sa.select(Station.id).where(Station.code == code)):
        raise click.BadParameter(f"station {code!r} already exists", param_hint="--code")
    db.session.add(
        Station(
            code=code,
            name=name.strip(),
            lat=lat,
            lon=lon,
            ack_timeout_s=ack_timeout_s,
            receipt_timeout_s=receipt_timeout_s,
            contact_target_s=contact_target_s,
            auxiliaries_take_offers=auxiliaries_take_offers,
        )
    )
    db.session.commit()
    click.echo(f"station {code} created")


def _read_password(username: str) -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on standard input")
    return password


@click.command("create-user")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--station", "station_code", required=True, help="Station code.")
@click.option("--display-name", default=None)
@click.option("--phone", default=None, help="The user's own mobile, for the SMS fallback.")
@click.option("--badge-no", default=None, help="Badge number (警号), unique within the station.")
@with_appcontext
def create_user(username, role, station_code, display_name, phone, badge_no):
    """Add a user; the password is read from stdin when it is not a terminal, else prompted."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise click.BadParameter("1 to 64 characters, no spaces", param_hint="--username")
    station = _station(station_code)
    if db.session.scalar(sa.select(User.id).where(User.username == username)):
        raise click.BadParameter(f"user {username!r} already exists", param_hint="--username")
    badge_no = (badge_no or "").strip() or None
    if badge_no is not None and not (
        len(badge_no) <= 16 and badge_no.isascii() and badge_no.isalnum()
    ):
        raise click.BadParameter("at most 16 letters or digits", param_hint="--badge-no")
    if badge_no is not None and db.session.scalar(
        sa.select(User.id).where(User.station_id == station.id, User.badge_no == badge_no)
    ):
        raise click.BadParameter(
            f"badge {badge_no} is already used at {station.code}", param_hint="--badge-no"
        )
    password = _read_password(username)
    problem = password_problem(password, username)
    if problem:
        raise click.UsageError(problem)
    db.session.add(
        User(
            username=username,
            password_hash=hash_password(password),
            display_name=(display_name or username)[:64],
            role=role,
            station_id=station.id,
            phone=phone,
            badge_no=badge_no,
        )
    )
    db.session.commit()
    click.echo(f"user {username} ({role}, {station.code}) created")


@click.command("create-token")
@click.option("--name", required=True, help="Who will use it, e.g. 'prefecture centre'.")
@click.option("--station", "station_code", default=None, help="Limit the token to one station.")
@click.option("--webhook-url", default=None, help="Where resolved warnings are reported.")
@with_appcontext
def create_token(name, station_code, webhook_url):
    """Make an intake API token; it is printed once and only its hash is kept."""
    if not name.strip() or len(name) > 100:
        raise click.BadParameter("1 to 100 characters", param_hint="--name")
    if webhook_url:
        _check_webhook_url(webhook_url)
    station = _station(station_code) if station_code else None
    row, plaintext = tokens.create_token(name.strip(), station, webhook_url)
    db.session.commit()
    click.echo(plaintext)  # stdout carries the token alone, for scripts
    click.echo(
        "This token is shown once and cannot be shown again (only its hash is kept). The "
        "centre sends it on every intake request:\n"
        f"  Authorization: Bearer {plaintext}",
        err=True,
    )
    if row.webhook_secret:
        click.echo(f"webhook signing secret: {row.webhook_secret}", err=True)


_WEBHOOK_REFUSALS = {
    "malformed": "is not a valid URL (printable ASCII, a host name, a valid port)",
    "scheme": "must be an https:// URL",
    "userinfo": "must not carry a user name or password",
    "host": "must name a host",
    "address": "points at a loopback, private, link-local or otherwise non-public address",
}


def _check_webhook_url(url: str) -> None:
    """Refuse a webhook URL the outbound rule would refuse at delivery (outbound_rule)."""
    try:
        target = outbound_rule.vet(url, outbound_rule.webhook_rule())
    except outbound_rule.Refused as exc:
        raise click.BadParameter(_WEBHOOK_REFUSALS[exc.reason], param_hint="--webhook-url") from exc
    if not target.addresses:
        click.echo(
            f"warning: {target.host} does not resolve now; checked again at delivery", err=True
        )


@click.command("revoke-token")
@click.option("--name", default=None, help="Revoke every live token with this name.")
@click.option("--id", "token_id", default=None, type=int, help="Revoke the token with this id.")
@with_appcontext
def revoke_token(name, token_id):
    """Revoke intake API tokens by name or id; they answer 401 from then on."""
    if (name is None) == (token_id is None):
        raise click.UsageError("give exactly one of --name or --id")
    rows = tokens.revoke(name=name, token_id=token_id)
    if not rows:
        raise click.ClickException("no live token matches")
    db.session.commit()
    for row in rows:
        click.echo(f"token {row.id} ({row.name}) revoked")


@click.command("retention")
@click.option("--days", required=True, type=click.IntRange(1, 36500), help="Keep this many days.")
@with_appcontext
def retention_command(days):
    """Remove personal data of warnings resolved more than DAYS days ago; figures stay."""
    from fieldapp import retention

    counts = retention.anonymise_resolved(days)
    db.session.commit()
    click.echo(
        f"anonymised {counts['warnings']} warnings, {counts['attempts']} attempt notes, "
        f"{counts['confirmations']} confirmation notes, {counts['outcomes']} outcome notes"
    )


@click.command("vapid-keys")
@with_appcontext
def vapid_keys():
    """Create the VAPID key pair if missing and print the public key."""
    key = vapid.load_or_create(current_app.config["VAPID_PRIVATE_KEY_FILE"])
    click.echo(vapid.public_key_b64(key))


@click.command("demo")
@click.option("--seed", default=7, show_default=True, help="Random seed, for repeatable data.")
@with_appcontext
def demo(seed):
    """Fill an empty database with a demo county and print the logins."""
    from fieldapp import demo as demo_data

    if db.session.scalar(sa.select(sa.func.count()).select_from(Station)):
        raise click.ClickException("the database already has stations; demo needs an empty one")
    logins = demo_data.build(seed=seed)
    db.session.commit()
    click.echo(demo_data.describe(logins))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@with_appcontext
def serve(host, port):
    """The embedded start: migrate, make keys, load the demo on an empty database, serve.

    Serves with gunicorn and gevent (gunicorn.conf.py, as docs/deploy.md); the outbox worker
    runs inside the web process when FIELDAPP_WORKER_IN_PROCESS is on (the SQLite default).
    """
    from flask_migrate import upgrade

    from fieldapp import demo as demo_data

    app = current_app._get_current_object()
    upgrade()
    vapid.load_or_create(app.config["VAPID_PRIVATE_KEY_FILE"])
    if not db.session.scalar(sa.select(sa.func.count()).select_from(Station)):
        logins = demo_data.build(seed=7)
        db.session.commit()
        click.echo(demo_data.describe(logins, f"http://{host}:{port}/"))
    else:
        click.echo("database already has data; demo not loaded (log in with your users)")
    click.echo(f"Fieldapp on http://{host}:{port}/")
    db.session.remove()
    db.engine.dispose()  # nothing opened here is carried into the server
    _exec_server(app, host, port)


def _exec_server(app: Flask, host: str, port: int) -> None:
    conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    if sys.platform.startswith("win") or not conf.exists():
        # No gunicorn here: werkzeug's server, with the worker in a thread as before.
        from werkzeug.serving import run_simple

        start_background_worker(app)
        run_simple(host, port, app, threaded=True, use_reloader=False)
        return
    env = dict(os.environ, FIELDAPP_BIND=f"{host}:{port}")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        env.setdefault("FIELDAPP_WEB_WORKERS", "1")  # one writer process for SQLite
    argv = [sys.executable, "-m", "gunicorn", "-c", str(conf), "--chdir", str(conf.parent)]
    argv.append("fieldapp:create_app()")
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # noqa: S606 - fixed argv: this Python, gunicorn


def start_background_worker(app: Flask) -> None:
    """Run the outbox worker in a thread when configured (the embedded default)."""
    from fieldapp import worker

    if app.config["WORKER_IN_PROCESS"]:
        worker.start_thread(app)


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--poll-s", default=0.5, show_default=True, type=click.FloatRange(0.05, 60))
@with_appcontext
def worker_command(once, poll_s):
    """Run the background loop: push delivery, retries, SMS fallback, offer timeouts."""
    from fieldapp import worker

    app = current_app._get_current_object()
    vapid.load_or_create(app.config["VAPID_PRIVATE_KEY_FILE"])
    if once:
        counts = worker.run_once()
        click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
        return
    click.echo("worker running; Ctrl-C to stop")
    with contextlib.suppress(KeyboardInterrupt):
        worker.run_forever(app, poll_s=poll_s)


def register(app: Flask) -> None:
    from fieldapp import cli_users

    for command in (
        *cli_users.COMMANDS,
        create_station,
        create_user,
        create_token,
        revoke_token,
        retention_command,
        vapid_keys,
        demo,
        serve,
        worker_command,
    ):
        app.cli.add_command(command)
