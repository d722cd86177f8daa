"""The live channel (fieldapp/live): one reader per process fanning out to every open stream."""

import queue
import re
import threading
import time
import types
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch, events, live
from fieldapp.extensions import db
from fieldapp.live import items
from fieldapp.live import start as live_start
from fieldapp.models import Event

WAIT_S = 10  # an upper bound for arrival, never a sleep: each wait ends when the item arrives


@pytest.fixture
def hub(app):
    app.config["LIVE_WAIT_S"] = 0.1  # the reader notices a stop this soon
    hub = live.get_hub(app)
    yield hub
    hub.stop()


@pytest.fixture
def two_stations(make):
    a, b = make.station(), make.station()
    chief_a = make.user(a, "chief")
    chief_b = make.user(b, "chief")
    wa, wb = make.warning(a), make.warning(b)
    db.session.commit()
    return {"a": a, "b": b, "chief_a": chief_a, "chief_b": chief_b, "wa": wa, "wb": wb}


def _got(sub, timeout=WAIT_S) -> list[int]:
    """Event ids a subscriber holds now, waiting up to `timeout` for the first."""
    out = []
    try:
        out.append(sub.queue.get(timeout=timeout)[0])
        while True:
            out.append(sub.queue.get_nowait()[0])
    except queue.Empty:
        return out


def _until(sub, event_id: int) -> list[int]:
    """Ids delivered to `sub` up to and including `event_id` (fails after WAIT_S)."""
    seen, deadline = [], time.monotonic() + WAIT_S
    while event_id not in seen:
        seen.append(sub.queue.get(timeout=max(deadline - time.monotonic(), 0.01))[0])
    return seen


def test_one_commit_reaches_every_open_stream_of_its_station_once(hub, two_stations):
    s = two_stations
    a_subs = [hub.subscribe(("board", n), s["a"].id, items.board_items) for n in range(5)]
    b_sub = hub.subscribe(("board", 99), s["b"].id, items.board_items)
    every = hub.subscribe(("board", 100), None, items.board_items)
    ea = events.record("attempt", warning=s["wa"], channel="phone", reached=True)
    db.session.commit()
    eb = events.record("attempt", warning=s["wb"], channel="phone", reached=True)
    db.session.commit()
    assert _until(every, eb.id) == [ea.id, eb.id]  # the admin's board hears both, in order
    for sub in a_subs:
        assert _got(sub) == [ea.id]  # exactly once; never station B's event
    assert _got(b_sub) == [eb.id]
    text = items.board_items(items.Facts.light(ea))
    assert f'"warning_id": {s["wa"].id}' in text and f"id: {ea.id}" in text


def test_officer_streams_hear_only_their_own_offer(hub, make, app):
    st = make.station()
    me, other = make.user(st, on_duty=True), make.user(st, on_duty=True)
    w = make.warning(st)
    db.session.commit()
    mine = hub.subscribe(("me", me.id), st.id, lambda f: items.officer_items(f, me.id, "zh_CN"))
    theirs = hub.subscribe(
        ("me", other.id), st.id, lambda f: items.officer_items(f, other.id, "zh_CN")
    )
    offer = dispatch.make_offer(w, me, clock.now(), distance_m=500)
    db.session.commit()
    event_id = db.session.scalar(sa.select(sa.func.max(Event.id)).where(Event.kind == "offered"))
    deadline = time.monotonic() + WAIT_S
    while True:
        eid, text = mine.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
        if eid == event_id:
            break
    assert "event: offer" in text and f'"offer_id": {offer.id}' in text
    assert '"expires_at"' in text and "event: changed" in text
    # Nothing for the other officer: not woken, nothing queued; the id is noted as skipped
    # (by the reader thread, which may reach that stream a moment after mine).
    while theirs.skipped < event_id and time.monotonic() < deadline:
        time.sleep(0.01)
    assert theirs.skipped >= event_id and theirs.queue.empty()


def test_catch_up_after_reconnect_and_after_a_process_restart(two_stations, client, auth, app):
    app.config.update(BOARD_STREAM_SECONDS=0.05, LIVE_WAIT_S=0.1)
    s = two_stations
    auth.login(s["chief_a"].username)
    first = events.record("attempt", warning=s["wa"], channel="phone", reached=False)
    db.session.commit()
    live.get_hub(app).stop()  # the process ends; a new one (new hub, new reader) takes over
    missed = [events.record("unassigned", warning=s["wa"]) for _ in range(3)]
    events.record("unassigned", warning=s["wb"])  # another station's: never shown
    db.session.commit()
    body = client.get(
        "/board/stream", buffered=True, headers={"Last-Event-ID": str(first.id)}
    ).get_data(as_text=True)
    ids = [int(x) for x in re.findall(r"^id: (\d+)$", body, re.M)]
    assert ids[0] == first.id  # the start comes first, then each missed event
    assert ids[1:] == [e.id for e in missed]  # nothing missed, nothing repeated, no other station
    assert body.count("event: changed") == 3
    live.get_hub(app).stop()


def test_per_user_cap_refuses_one_more_stream(hub, two_stations, client, auth, app):
    app.config.update(LIVE_STREAMS_PER_USER=2, BOARD_STREAM_SECONDS=0)
    chief = two_stations["chief_a"]
    auth.login(chief.username)
    held = [hub.subscribe(("board", chief.id), chief.station_id, items.board_items)] * 2
    held[1] = hub.subscribe(("board", chief.id), chief.station_id, items.board_items)
    assert None not in held  # two tabs hold their streams
    refused = client.get("/board/stream", buffered=True)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert hub.subscribe(("me", chief.id), chief.station_id, items.board_items) is not None
    hub.unsubscribe(held[0])  # a tab closes: its place is free again
    again = client.get("/board/stream", buffered=True)
    assert again.status_code == 200 and again.mimetype == "text/event-stream"
    assert hub.count() == 2  # the closed request gave its place back


def test_a_stream_that_reads_too_slowly_is_dropped(hub, two_stations, app):
    app.config["LIVE_QUEUE"] = 2
    s = two_stations
    slow = hub.subscribe(("board", 1), s["a"].id, items.board_items)
    for _ in range(4):
        events.record("unassigned", warning=s["wa"])
    db.session.commit()
    deadline = time.monotonic() + WAIT_S
    while not slow.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.closed and hub.count() == 0
    assert slow.queue.get_nowait()[1] is None  # the stream ends at once; its client catches up


def test_listener_connection_killed_recovers_and_misses_nothing(hub, two_stations, app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY: PostgreSQL only")
    s = two_stations
    sub = hub.subscribe(("board", 1), s["a"].id, items.board_items)
    deadline = time.monotonic() + WAIT_S
    while hub.listener_pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = hub.listener_pid
    assert pid is not None
    db.session.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # Written while the listener is down or reconnecting: must still arrive, once each.
    written = [events.record("unassigned", warning=s["wa"]) for _ in range(3)]
    db.session.commit()
    assert _until(sub, written[-1].id) == [e.id for e in written]
    after = events.record("attempt", warning=s["wa"], channel="phone", reached=True)
    db.session.commit()
    assert _until(sub, after.id) == [after.id]
    assert hub.listener_pid not in (None, pid)


def test_more_open_streams_than_the_old_threads_while_intake_answers(
    app, make, database_url, instance_dir, tmp_path
):
    """gunicorn with gevent (gunicorn.conf.py): 80 held streams (the old setup had 64 threads)
    and an intake POST still answers at once."""
    import http.client
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from fieldapp.auth import sessions

    st = make.station()
    officers = [make.user(st, on_duty=True) for _ in range(80)]
    _row, token = make.token(st)
    ser = app.session_interface.get_signing_serializer(app)
    cookies = []
    for u in officers:
        sid = os.urandom(8).hex()
        db.session.add(
            sessions.UserSession(
                token_hash=sessions._digest(sid), user_id=u.id, created_at=clock.now()
            )
        )
        cookies.append(ser.dumps({"_user_id": u.get_id(), sessions.SESSION_KEY: sid}))
    db.session.commit()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY=app.config["SECRET_KEY"],
        FIELDAPP_INSTANCE_PATH=str(tmp_path),
        FIELDAPP_BIND=f"127.0.0.1:{port}",
        FIELDAPP_WEB_WORKERS="1",
        FIELDAPP_WORKER_IN_PROCESS="0",
        FIELDAPP_LIVE_CAPACITY="200",
        VAPID_PRIVATE_KEY_FILE=app.config["VAPID_PRIVATE_KEY_FILE"],
    )
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py")]
    server = subprocess.Popen(
        [*cmd, "--chdir", str(root), "fieldapp:create_app()"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    held = []
    try:
        deadline = time.monotonic() + 20
        while True:  # until gunicorn listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.05)
        for cookie in cookies:
            # An upper bound for a loaded CI machine, not a measurement: 80 catch-up reads queue.
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            head = f"GET /api/v1/me/stream HTTP/1.1\r\nHost: t\r\nCookie: session={cookie}\r\n"
            sock.sendall(head.encode() + b"\r\n")
            held.append(sock)
        assert all(sock.recv(12).startswith(b"HTTP/1.1 200") for sock in held)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = {
            "source_ref": "LIVE-1",
            "person_name": "李四",
            "person_phone": "13800138000",
            "fraud_type": "fake_loan",
            "risk_level": "high",
            "location": {"lat": st.lat, "lon": st.lon, "accuracy_m": 50},
        }
        conn.request(
            "POST",
            "/api/v1/warnings",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert conn.getresponse().status == 201
    finally:
        for sock in held:
            sock.close()
        server.send_signal(signal.SIGINT)  # quick shutdown: do not wait out the open streams
        server.wait(20)


def test_a_stream_busy_with_other_officers_events_still_sends_keep_alives():
    """Events for others write nothing and wake nothing: the keep-alive still goes out on
    time, so no proxy sees a silent connection, and carries the newest id skipped."""
    from fieldapp.live.stream import _follow

    sub = types.SimpleNamespace(queue=queue.Queue(), skipped=0)
    stop = threading.Event()

    def busy_station():  # an event for another officer every 10 ms
        n = 0
        while not stop.wait(0.01):
            n += 1
            sub.skipped = n

    feeder = threading.Thread(target=busy_station, daemon=True)
    feeder.start()
    try:
        written = list(_follow(sub, set(), 0, seconds=0.45, keepalive=0.1, floor=0))
    finally:
        stop.set()
        feeder.join(2)
    pings = [text for text in written if "keep-alive" in text]
    assert len(pings) >= 3, written
    assert all(text.startswith("id: ") for text in pings)  # each moves Last-Event-ID on


def test_stream_lifetimes_are_spread_so_reconnects_do_not_come_in_waves():
    from fieldapp.live.stream import lifetime

    lives = [lifetime(55) for _ in range(50)]
    assert all(44 <= life <= 55 for life in lives)
    assert max(lives) - min(lives) > 2  # 50 draws over 11 s: never all in one second


def test_the_open_files_check_warns_when_the_limit_is_below_the_capacity():
    from fieldapp.live.limits import check_fd_limit

    assert check_fd_limit(100) is None
    warning = check_fd_limit(10**7)  # far past any hard limit
    assert warning and "LimitNOFILE" in warning and "FIELDAPP_LIVE_CAPACITY" in warning


def _ids(body: str) -> list[int]:
    return [int(x) for x in re.findall(r"^id: (\d+)$", body, re.M)]


def test_an_offer_made_while_the_app_reconnects_is_still_heard(make, client, auth, app):
    """A stream that carried no event still gives the browser an id to resume from: an
    offer committed between the end of one stream and the next is caught up, not skipped."""
    app.config.update(STREAM_SECONDS=0.05, LIVE_WAIT_S=0.1)
    st = make.station()
    me = make.user(st, on_duty=True)
    make.warning(st)  # an older event: the first stream starts after it
    db.session.commit()
    auth.login(me.username)
    first = client.get("/api/v1/me/stream", buffered=True).get_data(as_text=True)
    resume = _ids(first)[-1]  # the start, sent although nothing happened for this officer
    w = make.warning(st)
    dispatch.make_offer(w, me, clock.now(), distance_m=500)  # while the phone reconnects
    db.session.commit()
    again = client.get("/api/v1/me/stream", buffered=True, headers={"Last-Event-ID": str(resume)})
    body = again.get_data(as_text=True)
    assert "event: offer" in body and f'"warning_id": {w.id}' in body
    live.get_hub(app).stop()


def test_a_page_stream_starts_where_the_page_was_made(make, client, auth, app, monkeypatch):
    """The page's own start (?last_event_id) is used when everything after it is recent: an
    offer made between the page and its stream is heard; a stale page starts from now."""
    app.config.update(STREAM_SECONDS=0.05, LIVE_WAIT_S=0.1)
    st = make.station()
    me = make.user(st, on_duty=True)
    db.session.commit()
    auth.login(me.username)
    page = client.get("/field/").get_data(as_text=True)
    start = int(re.search(r"last_event_id=(\d+)", page).group(1))
    w = make.warning(st)
    dispatch.make_offer(w, me, clock.now(), distance_m=500)  # after the page, before its stream
    db.session.commit()
    body = client.get(f"/api/v1/me/stream?last_event_id={start}", buffered=True)
    assert f'"warning_id": {w.id}' in body.get_data(as_text=True)

    # The same page from the offline cache minutes later: what followed it is not replayed.
    later = clock.now() + live_start.PAGE_START_MAX_AGE + timedelta(minutes=4)
    monkeypatch.setattr(clock, "now", lambda: later)
    stale = client.get(f"/api/v1/me/stream?last_event_id={start}", buffered=True)
    stale_body = stale.get_data(as_text=True)
    assert "event: offer" not in stale_body
    assert _ids(stale_body)[0] == db.session.scalar(sa.select(sa.func.max(Event.id)))
    live.get_hub(app).stop()


def test_start_id_rules(make, app):
    st = make.station()
    make.warning(st)
    db.session.commit()
    newest = live_start.newest_id()
    assert live_start.start_id(3, None) == 3  # the browser's own Last-Event-ID wins
    assert live_start.start_id(None, None) == newest
    assert live_start.start_id(None, newest) == newest
    assert live_start.start_id(None, 2**31 - 1) == newest  # a start from the future: now
    assert live_start.start_id(None, 0) == 0  # everything after it is recent
