"""Locust users for bench/load/run.py: officers' devices, chiefs' boards, the centre's intake.

Reads the fixture written by run.py from $LOAD_FIXTURE (usernames, password, intake token,
station codes) and $LOAD_POSITION ("1" when POST /api/v1/me/position exists, else the devices
poll GET /field/ instead). Every officer's device holds its live stream open the whole run, as
an open app does; what the streams did (held, reconnects, events) goes to $LOAD_STREAM_REPORT
as JSON when locust quits. Run it through run.py, not by hand.
"""

import itertools
import json
import os
import random
import statistics
import time
import uuid

import gevent
import requests
from locust import HttpUser, between, constant, constant_throughput, events, task
from locust.clients import HttpSession

with open(os.environ["LOAD_FIXTURE"]) as _fh:
    FIXTURE = json.load(_fh)
POSITION = os.environ.get("LOAD_POSITION", "1") == "1"
BOARD_STREAM = os.environ.get("LOAD_BOARD_STREAM", "")  # path of the board's SSE feed, if any
OFFICER_STREAM = "/api/v1/me/stream"
STREAM_SECONDS = float(os.environ.get("FIELDAPP_STREAM_SECONDS", "55"))
# A browser's EventSource has no read timeout; this one only ends a stream the server has
# plainly lost (silent past its whole life). Silences shorter than that are measured instead.
READ_TIMEOUT_S = STREAM_SECONDS + 30
SILENT_S = 30  # longer than this with no byte, an idle-timeout on the way (NAT, proxy) may cut it
_officers = itertools.cycle(zip(FIXTURE["officers"], FIXTURE["officer_sessions"], strict=True))
_chiefs = itertools.cycle(FIXTURE["chief_sessions"])


def _resume(user: HttpUser, session: dict) -> str:
    """Take over a session run.py logged in (devices stay logged in for hours)."""
    for name, value in session["cookies"].items():
        user.client.cookies.set(name, value)
    return session["csrf"]


class Streams:
    """What every open stream of this locust process did, for run.py's report."""

    open = 0
    opened = 0  # connections answered 200
    resumed = 0  # of those, opened with a Last-Event-ID
    refused: dict[str, int] = {}  # status (or error) -> connections not answered 200
    broken = 0  # read failed mid-stream (not the server ending it, not the test's end)
    ended = 0  # ended by the server, as it does every FIELDAPP_STREAM_SECONDS
    events = 0  # SSE events received with data
    silences: list[float] = []  # per connection: the longest time without a byte
    samples: list[tuple[float, int]] = []  # (time, open streams), once a second
    spawned_at: float | None = None

    @classmethod
    def summary(cls) -> dict:
        # Held once every user is up, after a few seconds for the last ones to connect.
        steady = [n for t, n in cls.samples if cls.spawned_at and t >= cls.spawned_at + 5]
        return {
            "held_min": min(steady, default=0),
            "held_median": int(statistics.median(steady)) if steady else 0,
            "held_max": max((n for _t, n in cls.samples), default=0),
            "held_at_end": cls.samples[-1][1] if cls.samples else 0,
            "opened": cls.opened,
            "resumed": cls.resumed,
            "refused": cls.refused,
            "broken": cls.broken,
            "ended_by_server": cls.ended,
            "events": cls.events,
            "silence_max_s": round(max(cls.silences, default=0), 1),
            "silence_p95_s": round(_p95(cls.silences), 1),
            "silent_connections": sum(g > SILENT_S for g in cls.silences),
            "silent_s": SILENT_S,
        }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.95)] if ordered else 0.0


def _sample() -> None:
    while True:
        Streams.samples.append((time.monotonic(), Streams.open))
        gevent.sleep(1)


@events.test_start.add_listener
def _start_sampling(**_kw):
    gevent.spawn(_sample)


@events.spawning_complete.add_listener
def _spawned(**_kw):
    Streams.spawned_at = time.monotonic()


@events.test_stopping.add_listener
def _write_report(**_kw):
    # Before the users stop: the streams still open are the ones held to the end.
    Streams.samples.append((time.monotonic(), Streams.open))
    path = os.environ.get("LOAD_STREAM_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump(Streams.summary(), fh)


class EventSource:
    """One SSE connection held as a browser's EventSource holds it: read until the server ends
    it, then reconnect after its `retry:` with the Last-Event-ID last seen.

    Its own session (a phone's EventSource has its own connection) with the user's cookies. Each
    connection is one request in locust's stats, timed to its headers, failed when not 200; a
    read that breaks mid-stream is a failure named "<name> broken".
    """

    def __init__(self, user: HttpUser, path: str):
        self.path = path
        self.name = f"GET {path} (SSE)"
        self.request_event = user.environment.events.request
        self.session = HttpSession(base_url=user.host, request_event=self.request_event, user=user)
        self.session.cookies.update(user.client.cookies)
        self.last_id: str | None = None
        self.retry_s = 3.0

    def hold(self) -> None:
        """Hold the stream until killed (the user's on_stop)."""
        while True:
            gevent.sleep(self.once())

    def once(self) -> float:
        """One connection, read to its end; the seconds to wait before the next."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        resp = self.session.get(
            self.path,
            stream=True,
            name=self.name,
            headers=headers,
            timeout=(10, READ_TIMEOUT_S),
            catch_response=True,
        )
        try:
            with resp:  # reported as it opens, so a run's end leaves no connection uncounted
                if resp.status_code != 200:
                    key = str(resp.status_code or type(resp.error).__name__)
                    Streams.refused[key] = Streams.refused.get(key, 0) + 1
                    resp.failure(f"status {resp.status_code}")
                    retry_after = (resp.headers or {}).get("Retry-After", "")
                    return float(retry_after) if retry_after.isdigit() else self.retry_s
                resp.success()
            Streams.opened += 1
            Streams.resumed += self.last_id is not None
            Streams.open += 1
            opened_at = time.perf_counter()
            try:
                self._read(resp)
            except requests.RequestException as exc:
                Streams.broken += 1
                self.request_event.fire(
                    request_type="GET",
                    name=f"{self.name} broken",
                    response_time=(time.perf_counter() - opened_at) * 1000,
                    response_length=0,
                    exception=exc,
                    context={},
                )
                return self.retry_s
            finally:
                Streams.open -= 1
            Streams.ended += 1
            return self.retry_s
        finally:
            # Closed before any reconnect, so an old connection never counts against the
            # per-user cap (3 per process) while its successor opens.
            if resp.raw is not None:  # None: the connection itself failed
                resp.close()

    def _read(self, resp) -> None:
        has_data = False
        last_byte = time.monotonic()
        longest = 0.0
        try:
            for line in resp.iter_lines(decode_unicode=True):
                now = time.monotonic()
                longest = max(longest, now - last_byte)
                last_byte = now
                self._line(line, has_data)
                has_data = bool(line) and (has_data or line.startswith("data:"))
        finally:
            Streams.silences.append(max(longest, time.monotonic() - last_byte))

    def _line(self, line: str, has_data: bool) -> None:
        if not line:  # blank line: the end of one event
            Streams.events += has_data
        elif line.startswith("id:"):
            self.last_id = line[3:].strip()
        elif line.startswith("retry:") and line[6:].strip().isdigit():
            self.retry_s = int(line[6:].strip()) / 1000


class OfficerDevice(HttpUser):
    """An officer's phone with the app open: its live stream held the whole time, its position
    posted every 30 s."""

    fixed_count = FIXTURE["counts"]["officers"]
    wait_time = constant(30)

    def on_start(self):
        (self.username, self.lat, self.lon), session = next(_officers)
        self.csrf = _resume(self, session)
        self.stream = gevent.spawn(EventSource(self, OFFICER_STREAM).hold)

    def on_stop(self):
        self.stream.kill(block=True, timeout=5)

    @task
    def report_position(self):
        if not POSITION:
            self.client.get("/field/", name="GET /field/")
            return
        self.lat += random.uniform(-0.0005, 0.0005)
        self.lon += random.uniform(-0.0005, 0.0005)
        self.client.post(
            "/api/v1/me/position",
            json={"lat": self.lat, "lon": self.lon, "accuracy_m": 15},
            headers={"X-CSRFToken": self.csrf},
            name="POST /api/v1/me/position",
        )


class ChiefBoard(HttpUser):
    """A station chief's live board, refreshed every few seconds."""

    fixed_count = FIXTURE["counts"]["chiefs"]
    wait_time = between(4, 6)

    def on_start(self):
        _resume(self, next(_chiefs))

    @task
    def board(self):
        self.client.get("/board/", name="GET /board/")


class ChiefLiveFeed(HttpUser):
    """The same chiefs' boards holding their live (SSE) feed open, reconnecting with
    Last-Event-ID after the server's `retry:` each time the server ends it."""

    abstract = not BOARD_STREAM  # no feed on this branch: this user class is not used
    fixed_count = FIXTURE["counts"]["chiefs"]

    def wait_time(self):
        return self.pause_s

    def on_start(self):
        _resume(self, next(_chiefs))
        self.feed = EventSource(self, BOARD_STREAM)
        self.pause_s = 0.0

    @task
    def follow(self):
        self.pause_s = self.feed.once()


class Centre(HttpUser):
    """The anti-fraud centre: each user sends one warning a second."""

    fixed_count = FIXTURE["counts"]["centre_users"]
    wait_time = constant_throughput(1)

    @task
    def send_warning(self):
        station = random.choice(FIXTURE["stations"])
        self.client.post(
            "/api/v1/warnings",
            json={
                "source_ref": uuid.uuid4().hex,
                "person_name": "压测",
                "person_phone": "13800138000",
                "fraud_type": "fake_loan",
                "amount_at_risk": 20000,
                "location": {
                    "lat": station["lat"] + random.uniform(-0.02, 0.02),
                    "lon": station["lon"] + random.uniform(-0.02, 0.02),
                },
            },
            headers={"Authorization": f"Bearer {FIXTURE['token']}"},
            name="POST /api/v1/warnings",
        )
