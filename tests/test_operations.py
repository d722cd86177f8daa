"""Operations: `flask retention`, /healthz and /readyz."""

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from fieldapp import retention
from fieldapp.extensions import db
from fieldapp.models import Confirmation, ContactAttempt, Event, Outcome, Warning, WorkerHeartbeat


@pytest.fixture
def closed(make, fake_clock):
    """Three warnings: resolved 40 days ago, resolved 5 days ago, still open (received 60 ago)."""
    station = make.station("A")
    officer = make.user(station, "officer", "ret_officer")
    aux = make.user(station, "auxiliary", "ret_aux")
    now = fake_clock.current
    rows = {}
    for key, age_days, status in (("old", 40, "resolved"), ("recent", 5, "resolved")):
        w = make.warning(
            station,
            person_name="王五",
            person_phone="13700001111",
            address="西街3号",
            suspect_account="6222000011112222",
            note="刷单返利",
            status=status,
            owner_id=officer.id,
            received_at=now - timedelta(days=age_days, hours=1),
            accepted_at=now - timedelta(days=age_days, minutes=50),
            resolved_at=now - timedelta(days=age_days),
            amount_at_risk=Decimal("12000.50"),
        )
        attempt = ContactAttempt(
            client_id=f"ret-{key}",
            warning_id=w.id,
            user_id=officer.id,
            channel="visit",
            reached=True,
            attempted_at=now - timedelta(days=age_days, minutes=30),
            note="见到本人",
        )
        db.session.add(attempt)
        db.session.flush()
        db.session.add(
            Confirmation(client_id=f"ret-c-{key}", attempt_id=attempt.id, user_id=aux.id, note="x")
        )
        db.session.add(
            Outcome(
                warning_id=w.id,
                outcome="persuaded",
                app_installed=True,
                note="其子协助",
                recorded_by_id=officer.id,
                recorded_at=w.resolved_at,
                loss_amount=Decimal("0"),
            )
        )
        db.session.add(Event(kind="resolved", warning_id=w.id, station_id=station.id, data={}))
        rows[key] = w
    rows["open"] = make.warning(
        station, person_name="赵六", status="in_contact", received_at=now - timedelta(days=60)
    )
    db.session.commit()
    return rows


def _figures(w: Warning) -> tuple:
    o = w.outcome
    return (
        w.status,
        w.fraud_type,
        w.risk_level,
        w.amount_at_risk,
        w.received_at,
        w.accepted_at,
        w.resolved_at,
        w.owner_id,
        w.station_id,
        o.outcome,
        o.app_installed,
        o.loss_amount,
        [(a.channel, a.reached, a.attempted_at) for a in w.attempts],
    )


def test_retention_wipes_personal_data_of_old_resolved_warnings(closed, runner):
    before = {k: _figures(w) for k, w in closed.items() if k != "open"}
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    result = runner.invoke(args=["retention", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "anonymised 1 warnings, 1 attempt notes, 1 confirmation notes, 1 outcome notes" in (
        result.output
    )
    db.session.expire_all()
    old, recent, still_open = closed["old"], closed["recent"], closed["open"]
    assert (old.person_name, old.person_phone) == ("", "")
    assert old.address is None and old.suspect_account is None and old.note is None
    assert old.anonymised_at is not None
    assert old.attempts[0].note is None and old.outcome.note is None
    assert old.attempts[0].confirmations[0].note is None
    assert _figures(old) == before["old"]
    # Coarsened to about a kilometre, not dropped: per-area figures still work.
    assert old.lat == pytest.approx(round(old.lat, 2))
    # Newer and open warnings keep everything.
    assert recent.person_name == "王五" and recent.note == "刷单返利"
    assert recent.attempts[0].note == "见到本人" and recent.anonymised_at is None
    assert still_open.person_name == "赵六"
    # The event log is untouched, plus one event saying retention ran.
    events_after = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    assert events_after == events_before + 1


def test_retention_is_idempotent(closed, runner):
    assert runner.invoke(args=["retention", "--days", "30"]).exit_code == 0
    second = runner.invoke(args=["retention", "--days", "30"])
    assert second.exit_code == 0
    assert "anonymised 0 warnings" in second.output
    # A shorter period then reaches the recent one too.
    third = runner.invoke(args=["retention", "--days", "3"])
    assert "anonymised 1 warnings" in third.output
    db.session.expire_all()
    assert closed["recent"].person_name == ""


def test_retention_refuses_bad_days(runner):
    assert runner.invoke(args=["retention", "--days", "0"]).exit_code != 0
    assert runner.invoke(args=["retention"]).exit_code != 0


def test_retention_domain_function_counts(closed, fake_clock):
    counts = retention.anonymise_resolved(30, now=fake_clock.current)
    db.session.commit()
    assert counts == {"warnings": 1, "attempts": 1, "confirmations": 1, "outcomes": 1}


# --- health checks --------------------------------------------------------------------------


def test_healthz_always_answers(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_readyz_needs_a_fresh_worker_heartbeat(client, fake_clock):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"] == {"database": "ok", "worker": "stale"}
    db.session.add(WorkerHeartbeat(name="w1", seen_at=fake_clock.current))
    db.session.commit()
    resp = client.get("/readyz")
    assert resp.status_code == 200 and resp.get_json()["status"] == "ok"
    fake_clock.advance(61)
    assert client.get("/readyz").status_code == 503


def test_readyz_reports_a_broken_database(client, monkeypatch):
    def broken(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", broken)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["database"] == "error"
