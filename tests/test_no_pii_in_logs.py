"""No personal data in the logs: capture everything logged during a warning's whole life.

Intake (API, with a bad request and a repeat on the way) → dispatch → an offer expiring and the
next officer accepting → contact attempts → resolve → the centre reading its feedback → the board
and field pages → a database error carrying the name in its parameters. Every log record of every
logger (at DEBUG) must be free of the resident's name, phone, address, suspect account and notes.

SQLAlchemy's own loggers stay at their default (WARNING): turned up they echo every bound
parameter by design, and production never turns them up (checked below).

The officer's steps go through the real sync API and the worker runs over the outbox, so the
request, worker and SMS logs of a whole life are all captured.
"""

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import clock, create_app, dispatch, worker
from fieldapp.extensions import db
from fieldapp.models import Confirmation, ContactAttempt, Offer, Warning
from tests.conftest import _config, _empty_all_tables

NAME = "欧阳娜娜"
PHONE = "13912345678"
ADDRESS = "东岭村七组28号"
ACCOUNT = "6222020200112233445"
NOTE = "冒充客服退款，已下载会议软件"
ATTEMPT_NOTE = "打了三次未接"
OUTCOME_NOTE = "其表哥在场协助劝阻"
SECRETS = (NAME, PHONE, ADDRESS, ACCOUNT, NOTE, ATTEMPT_NOTE, OUTCOME_NOTE, "139-1234-5678")


@pytest.fixture
def app(migrated, database_url, instance_dir):
    """The test app, but with the production engine options (hide_parameters)."""
    app = create_app(_config(database_url, instance_dir))
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
    with app.app_context():
        yield app
        db.session.remove()
        _empty_all_tables()
        db.engine.dispose()


@pytest.fixture
def everything_logged(caplog):
    loggers = ["", "werkzeug", "fieldapp", "flask.app", "pywebpush", "urllib3", "requests"]
    for name in loggers:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _run_worker(app) -> None:
    worker.run_once(now=clock.now())


def test_a_whole_warning_life_logs_no_personal_data(
    app, client, make, fake_clock, everything_logged
):
    station = make.station("A", ack_timeout_s=60)
    first = make.user(station, "officer", "log_first", on_duty=True, lat=27.82, lon=114.93)
    second = make.user(station, "officer", "log_second", on_duty=True, lat=27.90, lon=114.99)
    make.user(station, "auxiliary", "log_aux")
    make.user(station, "chief", "log_chief")
    _row, token = make.token()
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    body = make.intake_body(
        person_name=NAME,
        person_phone="139-1234-5678",
        address=ADDRESS,
        suspect_account=ACCOUNT,
        note=NOTE,
        location={"lat": 27.821, "lon": 114.931},
    )
    # A bad request first: validation errors must not echo the input back into the logs.
    bad = client.post("/api/v1/warnings", json={**body, "fraud_type": "???"}, headers=headers)
    assert bad.status_code == 422
    created = client.post("/api/v1/warnings", json=body, headers=headers)
    assert created.status_code == 201
    assert client.post("/api/v1/warnings", json=body, headers=headers).status_code == 200
    warning = db.session.get(Warning, created.get_json()["id"])
    assert warning.person_name == NAME and warning.status == "offered"
    _run_worker(app)

    # The first officer lets the offer run out; the next nearest accepts.
    offer = db.session.scalar(sa.select(Offer).where(Offer.warning_id == warning.id))
    assert offer.officer_id == first.id
    now = fake_clock.advance(61)
    dispatch.expire(offer, now)
    dispatch.accept(warning, second, fake_clock.advance(20))
    db.session.commit()

    # The officer works the warning from the phone, through the same sync API the offline queue
    # uses: two attempts, a colleague's confirmation, the outcome.
    from tests.conftest import AuthActions

    phone = app.test_client()
    officer = AuthActions(phone)
    officer.login("log_second")

    def sync(auth_actions, *entries):
        resp = auth_actions.post_json("/api/v1/sync", {"entries": list(entries)})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        results = resp.get_json()["results"]
        assert [r["status"] for r in results] == ["applied"] * len(entries), results
        return results

    def entry(client_id, kind, data):
        return {
            "client_id": client_id,
            "kind": kind,
            "warning_id": warning.id,
            "data": data,
            "recorded_at": clock.now().isoformat(),
        }

    fake_clock.advance(60)
    sync(
        officer,
        entry(
            "log-attempt-1", "attempt", {"channel": "phone", "reached": False, "note": ATTEMPT_NOTE}
        ),
    )
    fake_clock.advance(120)
    sync(
        officer,
        entry(
            "log-attempt-2",
            "attempt",
            {"channel": "wechat_video", "reached": True, "note": ATTEMPT_NOTE},
        ),
    )
    reached = db.session.scalar(sa.select(ContactAttempt).where(ContactAttempt.reached.is_(True)))
    colleague_phone = app.test_client()
    colleague = AuthActions(colleague_phone)
    colleague.login("log_aux")
    sync(
        colleague,
        entry("log-confirm-1", "confirm", {"attempt_id": reached.id, "note": OUTCOME_NOTE}),
    )
    fake_clock.advance(300)
    sync(
        officer,
        entry(
            "log-resolve-1",
            "resolve",
            {"outcome": "persuaded", "app_installed": True, "note": OUTCOME_NOTE},
        ),
    )
    db.session.refresh(warning)
    assert warning.status == "resolved"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Confirmation)) == 1
    _run_worker(app)

    # The centre reads its feedback; the people look at their pages.
    feedback = client.get(f"/api/v1/warnings/{warning.id}", headers=headers)
    assert feedback.status_code == 200 and feedback.get_json()["outcome"]["outcome"] == "persuaded"
    from tests.conftest import AuthActions

    auth = AuthActions(client)
    auth.login("log_chief")
    assert client.get("/board/").status_code == 200
    auth.logout()
    auth.login("log_second")
    assert client.get("/field/").status_code == 200
    auth.logout()

    # A database error whose parameters hold the name: logged the way Flask logs a crash.
    db.session.add(
        Warning(
            token_id=warning.token_id,
            source_ref=warning.source_ref,  # violates the unique (token, source_ref)
            person_name=NAME,
            person_phone=PHONE,
            fraud_type="other",
            station_id=station.id,
            address=ADDRESS,
        )
    )
    with pytest.raises(sa.exc.IntegrityError) as crash:
        db.session.flush()
    logging.getLogger("flask.app").error("Exception on request", exc_info=crash.value)
    db.session.rollback()

    records = everything_logged.records
    assert records, "nothing was logged at all: the capture is not working"
    text = "\n".join(
        f"{r.name} {r.getMessage()} {everything_logged.handler.format(r)}" for r in records
    )
    leaks = [secret for secret in SECRETS if secret in text]
    assert not leaks, f"personal data in the logs: {leaks}\n{text[:3000]}"
    assert fake_clock.current - warning.received_at > timedelta(minutes=5)
    assert clock.now() == fake_clock.current


def test_the_capture_would_catch_a_leak(app, everything_logged):
    """Proves the check above can fail: a careless log line is seen."""
    logging.getLogger("fieldapp.anything").debug("calling %s", NAME)
    assert NAME in "\n".join(r.getMessage() for r in everything_logged.records)


def test_production_leaves_sql_echo_off(monkeypatch, tmp_path):
    """SQL echo logs every bound value; the production logging setup must not enable it."""
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    create_app()
    assert logging.getLogger("sqlalchemy.engine").getEffectiveLevel() >= logging.WARNING
