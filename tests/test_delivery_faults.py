"""Issue 14 #1: no endpoint can poison or hold the outbox.

A server answering Retry-After: inf (or 1e12, or a date in year 9999), a handler that raises
anything at all, a push service that trickles its answer: each row is retried with backoff
and retired `dead` after outbox.MAX_ATTEMPTS, and the rows claimed with it are sent on time.
"""

import socket
import time

import pytest

from fieldapp import outbound_http, outbound_rule, outbox, push, webhooks, worker
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage
from tests.listeners import CertificateAuthority, Recorder, Trickler
from tests.pushservice import subscribe

LAT, LON = 27.8170, 114.9230
HOSTILE_RETRY_AFTER = ["inf", "Infinity", "1e12", "99999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"]


def row(row_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, row_id)


@pytest.fixture
def officers(make, push_service, fake_clock):
    """A hostile officer first, then three ordinary ones, each with one device."""
    station = make.station(lat=LAT, lon=LON)
    people = []
    for _ in range(4):
        officer = make.user(station, on_duty=True, lat=LAT, lon=LON)
        device = push_service.device()
        subscribe(officer, device)
        people.append((officer, device))
    db.session.commit()
    return station, people


def queue_pushes(people) -> list[int]:
    """One push per officer, the hostile one's queued (and so claimed) first."""
    ids = []
    for officer, _device in people:
        message = outbox.enqueue("push", {"user_id": officer.id, "push_kind": "reminder"})
        db.session.flush()
        ids.append(message.id)
    db.session.commit()
    return ids


def run_until_settled(hostile_id: int, fake_clock) -> int:
    """Run the worker whenever the hostile row is due again; returns how many more runs."""
    for runs in range(outbox.MAX_ATTEMPTS + 5):
        hostile = row(hostile_id)
        if hostile.status != "pending":
            return runs
        assert hostile.locked_until is None  # put back, not left leased
        wait = (hostile.due_at - fake_clock.now()).total_seconds()
        assert 0 < wait <= outbox.RETRY_AFTER_CAP_S * 1.25
        fake_clock.current = hostile.due_at
        worker.run_once()
    raise AssertionError("never settled")


@pytest.mark.parametrize("retry_after", HOSTILE_RETRY_AFTER)
def test_a_push_service_retry_after_of_forever_neither_crashes_nor_holds_the_batch(
    officers, fake_clock, retry_after
):
    _station, people = officers
    hostile_device = people[0][1]
    hostile_device.answer(429, retry_after, times=outbox.MAX_ATTEMPTS + 5)
    hostile_id, *other_ids = queue_pushes(people)
    counts = worker.run_once()
    assert counts == {"done": 3, "retry": 1, "lost": 0}
    for (_officer, device), other_id in zip(people[1:], other_ids, strict=True):
        assert len(device.received) == 1 and row(other_id).status == "done"
    assert "429" in row(hostile_id).last_error
    runs = run_until_settled(hostile_id, fake_clock)
    hostile = row(hostile_id)
    assert hostile.status == "dead" and hostile.attempts == outbox.MAX_ATTEMPTS
    assert runs == outbox.MAX_ATTEMPTS - 1  # the first attempt was in the first run
    assert hostile_device.received == []


@pytest.mark.parametrize("retry_after", ["99999999999999", "inf", "1e12"])
def test_a_webhook_retry_after_of_forever_neither_crashes_nor_holds_the_batch(
    app, make, officers, fake_clock, retry_after
):
    _station, people = officers
    app.config["WEBHOOK_ALLOW_INSECURE_URLS"] = True  # the receivers are on 127.0.0.1
    hostile = Recorder(429, {"Retry-After": retry_after})
    good = Recorder(200)
    try:
        bad_token, _ = make.token(name="hostile", webhook_url=f"{hostile.url}/hook")
        good_token, _ = make.token(name="good", webhook_url=f"{good.url}/hook")
        station = people[0][0].station
        w1 = make.warning(station, token_id=bad_token.id, status="resolved")
        w2 = make.warning(station, token_id=good_token.id, status="resolved")
        first = outbox.enqueue("webhook", {"warning_id": w1.id, "event": "resolved"})
        outbox.enqueue("webhook", {"warning_id": w2.id, "event": "resolved"})
        db.session.commit()
        pushes = queue_pushes(people[1:])
        counts = worker.run_once()
        assert counts == {"done": 4, "retry": 1, "lost": 0}
        assert len(good.requests) == 1
        assert all(row(push_id).status == "done" for push_id in pushes)
        run_until_settled(first.id, fake_clock)
    finally:
        hostile.close()
        good.close()
    assert row(first.id).status == "dead" and row(first.id).attempts == outbox.MAX_ATTEMPTS
    assert len(hostile.requests) == outbox.MAX_ATTEMPTS


@pytest.mark.parametrize(
    "error",
    [OverflowError("date value out of range"), ValueError("bad"), KeyError("x"), RecursionError()],
)
def test_a_handler_failing_in_any_way_is_retried_then_dead_and_its_batch_goes_on(
    officers, fake_clock, monkeypatch, error
):
    _station, people = officers

    def boom(message, now):
        raise error

    monkeypatch.setitem(worker.HANDLERS, "offer_timeout", boom)
    broken = outbox.enqueue("offer_timeout", {"offer_id": 1})
    db.session.commit()
    others = queue_pushes(people)
    counts = worker.run_once()
    assert counts == {"done": 4, "retry": 1, "lost": 0}
    assert all(row(other).status == "done" for other in others)
    assert type(error).__name__ in row(broken.id).last_error
    run_until_settled(broken.id, fake_clock)
    assert row(broken.id).status == "dead" and row(broken.id).attempts == outbox.MAX_ATTEMPTS


def test_a_row_claimed_too_often_without_an_answer_is_retired(officers, fake_clock, monkeypatch):
    """A row whose every run killed its process (never put back) does not run for ever."""
    ran = []
    monkeypatch.setitem(worker.HANDLERS, "offer_timeout", lambda m, now: ran.append(m.id))
    message = outbox.enqueue("offer_timeout", {"offer_id": 1})
    message.attempts = outbox.MAX_ATTEMPTS  # claimed that often, each run died
    db.session.commit()
    worker.run_once()
    assert ran == [] and row(message.id).status == "dead"
    assert "attempts exhausted" in row(message.id).last_error


def test_a_trickling_push_service_is_cut_at_the_deadline_and_the_others_go_on_time(
    officers, fake_clock, push_service, monkeypatch
):
    _station, people = officers
    # 3 s: wide enough that the others, sent meanwhile, arrive first on a loaded CI machine.
    monkeypatch.setattr(push, "SEND_DEADLINE_S", 3.0)
    people[0][1].answer(201, trickle_s=1.0)  # ~45 bytes at one a second
    hostile_id, *others = queue_pushes(people)
    started = time.perf_counter()
    counts = worker.run_once()
    took = time.perf_counter() - started
    assert counts == {"done": 3, "retry": 1, "lost": 0}
    # The others were sent while the trickler was still trickling, not after it.
    for _officer, device in people[1:]:
        assert device.received[0]["at"] - started < push.SEND_DEADLINE_S
    assert took < push.SEND_DEADLINE_S + 3  # cut at the deadline, not after ~45 s
    hostile = row(hostile_id)
    assert hostile.status == "pending" and "deadline" in hostile.last_error
    assert push_service.trickled == 0
    # Its retry comes after the backoff, and only to that device.
    fake_clock.advance(3600)
    assert worker.run_once()["done"] == 1 and len(people[0][1].received) == 1
    assert all(len(device.received) == 1 for _o, device in people[1:])


def test_every_outbox_kind_has_a_handler(app):
    from fieldapp.models import OUTBOX_KINDS

    assert set(worker.HANDLERS) == set(OUTBOX_KINDS)


def test_a_trickling_https_webhook_is_cut_at_the_deadline_and_the_others_go_on_time(
    app, make, officers, fake_clock, monkeypatch, tmp_path
):
    """The same over TLS (a CA made for this test), with a receiver on a named host."""
    _station, people = officers
    ca = CertificateAuthority(tmp_path)
    outbound_http.use_ca_file(str(ca.ca_file))
    slow = Trickler(every_s=0.3, tls=ca.server_context("centre.test"))  # 45 bytes: 13 s
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            if host == "centre.test"
            else real(host, port, *a, **k)
        ),
    )
    outbound_rule.forget_resolved()
    app.config["WEBHOOK_ALLOW_NETWORKS"] = ("127.0.0.0/8",)  # the test's "intranet"
    monkeypatch.setattr(webhooks, "DEADLINE_S", 1.5)
    try:
        token, _ = make.token(name="slow", webhook_url=f"https://centre.test:{slow.port}/hook")
        w = make.warning(people[0][0].station, token_id=token.id, status="resolved")
        hook = outbox.enqueue("webhook", {"warning_id": w.id, "event": "resolved"})
        db.session.commit()
        queue_pushes(people)
        started = time.perf_counter()
        counts = worker.run_once()
    finally:
        slow.close()
        outbound_http.use_ca_file(None)
        outbound_rule.forget_resolved()
    assert counts == {"done": 4, "retry": 1, "lost": 0}
    for _officer, device in people:
        assert device.received[0]["at"] - started < webhooks.DEADLINE_S
    assert slow.connections == 1 and slow.bytes_sent >= 1
    assert "deadline" in row(hook.id).last_error and row(hook.id).status == "pending"
