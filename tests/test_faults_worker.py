"""Faults around the background worker: the push service down, the worker killed mid-batch.

The worker runs in this process (`worker.run_once`) and as a separate `flask --app app worker`
process, which is killed mid-batch.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pywebpush import WebPushException, webpush

from fieldapp import clock, vapid, worker
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage
from tests.pushservice import subscribe

ROOT = Path(__file__).resolve().parent.parent


def _subscribe(push_service, user) -> None:
    subscribe(user, push_service.device())


def _push_rows() -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "push")))


def _county(make, push_service, officers: int = 3):
    station = make.station("A", ack_timeout_s=3600, receipt_timeout_s=3600)
    people = [
        make.user(station, "officer", on_duty=True, lat=station.lat, lon=station.lon)
        for _ in range(officers)
    ]
    for person in people:
        _subscribe(push_service, person)
    _row, token = make.token()
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_harness_self_check(app, push_service):
    """The fake push service decrypts real Web Push messages and can be down."""
    device = push_service.device()
    key = vapid.load_or_create(app.config["VAPID_PRIVATE_KEY_FILE"])
    sub = device.subscription_json()
    claims = {"sub": "mailto:test@example.org"}
    webpush(sub, '{"message_id": "m1", "v": 1}', vapid_private_key=key, vapid_claims=claims)
    assert push_service.accepted == [{"message_id": "m1", "v": 1}]
    push_service.mode = "down"
    with pytest.raises(WebPushException) as refused:
        webpush(sub, '{"message_id": "m2"}', vapid_private_key=key, vapid_claims=dict(claims))
    assert refused.value.response.status_code == 503
    assert push_service.refused == 1


def test_push_service_down_then_back_delivers_every_message_once(
    app, client, make, fake_clock, push_service
):
    headers = _county(make, push_service)
    push_service.mode = "down"
    for _ in range(3):
        resp = client.post("/api/v1/warnings", json=make.intake_body(), headers=headers)
        assert resp.status_code == 201
    assert len(_push_rows()) >= 3
    # Two minutes of outage with the worker polling every five seconds.
    for _ in range(24):
        worker.run_once(now=fake_clock.now())
        fake_clock.advance(5)
    assert push_service.accepted == []
    assert push_service.refused >= 3
    db.session.expire_all()
    assert all(row.status == "pending" for row in _push_rows()), "gave up during the outage"
    # Back up: jump past any backoff, a few times, until nothing is due.
    push_service.mode = "up"
    for _ in range(12):
        fake_clock.advance(300)
        worker.run_once(now=fake_clock.now())
    db.session.expire_all()
    rows = _push_rows()
    assert rows and all(row.status == "done" for row in rows), [r.status for r in rows]
    delivered = [p["message_id"] for p in push_service.accepted]
    assert len(delivered) == len(set(delivered)), "a message was delivered twice"
    assert len(delivered) == len(rows), "a message was lost or doubled"


def _worker_process(database_url: str, instance_dir) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "FIELDAPP_INSTANCE_PATH": str(instance_dir),
        "VAPID_PRIVATE_KEY_FILE": str(instance_dir / "vapid_private.pem"),
        "VAPID_SUBJECT": "mailto:test@example.org",
        "FIELDAPP_WORKER_IN_PROCESS": "0",
        "FIELDAPP_PUSH_ALLOW_INSECURE_ENDPOINTS": "1",  # the push service is on 127.0.0.1
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_worker_killed_mid_batch_loses_and_doubles_nothing(
    app, client, make, push_service, database_url, instance_dir
):
    headers = _county(make, push_service, officers=6)
    vapid.load_or_create(app.config["VAPID_PRIVATE_KEY_FILE"])
    for _ in range(6):
        assert client.post("/api/v1/warnings", json=make.intake_body(), headers=headers).status_code
    expected = len(_push_rows())
    assert expected >= 6
    push_service.hold_after = 2  # the third push hangs: the worker is mid-batch
    proc = _worker_process(database_url, instance_dir)
    try:
        assert push_service.held.wait(timeout=60), "the worker process never reached the push"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's group only
        proc.wait(timeout=10)
    push_service.hold_after = None
    push_service.release.set()
    time.sleep(0.2)  # let the held handler thread return
    # A fresh worker after the dead one's leases ran out finishes the batch.
    later = clock.now() + timedelta(hours=1)
    for step in range(10):
        worker.run_once(now=later + timedelta(minutes=10 * step))
    db.session.expire_all()
    rows = _push_rows()
    assert all(row.status == "done" for row in rows), [r.status for r in rows]
    delivered = [p["message_id"] for p in push_service.accepted]
    assert len(delivered) == len(set(delivered)), "a message was delivered twice"
    assert len(rows) >= expected
    # A push whose intent was committed when the worker died (on the wire, or about to be:
    # the worker sends several rows at once) never got the push service's 201; a worker cannot
    # know whether it arrived, so it is given up (at-most-once, marked uncertain, covered by
    # the SMS fallback of receipt_check). Every other message was delivered.
    uncertain = {f"m{row.id}" for row in rows if row.payload.get("uncertain")}
    assert set(delivered) | uncertain == {f"m{row.id}" for row in rows}, "a message was lost"
    assert not set(delivered) & uncertain or push_service.held_count
    assert len(uncertain) <= worker.THREADS
