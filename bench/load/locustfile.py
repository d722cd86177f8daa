"""Locust users for bench/load/run.py: officers' devices, chiefs' boards, the centre's intake.

Reads the fixture written by run.py from $LOAD_FIXTURE (usernames, password, intake token,
station codes) and $LOAD_POSITION ("1" when POST /api/v1/me/position exists, else the devices
poll GET /field/ instead). Run it through run.py, not by hand.
"""

import itertools
import json
import os
import random
import time
import uuid

from locust import HttpUser, between, constant, constant_throughput, task

with open(os.environ["LOAD_FIXTURE"]) as _fh:
    FIXTURE = json.load(_fh)
POSITION = os.environ.get("LOAD_POSITION", "1") == "1"
BOARD_STREAM = os.environ.get("LOAD_BOARD_STREAM", "")  # path of the board's SSE feed, if any
STREAM_HOLD_S = 20
_officers = itertools.cycle(zip(FIXTURE["officers"], FIXTURE["officer_sessions"], strict=True))
_chiefs = itertools.cycle(FIXTURE["chief_sessions"])


def _resume(user: HttpUser, session: dict) -> str:
    """Take over a session run.py logged in (devices stay logged in for hours)."""
    for name, value in session["cookies"].items():
        user.client.cookies.set(name, value)
    return session["csrf"]


class OfficerDevice(HttpUser):
    """An officer's phone reporting its position every 30 s."""

    fixed_count = FIXTURE["counts"]["officers"]
    wait_time = constant(30)

    def on_start(self):
        (self.username, self.lat, self.lon), session = next(_officers)
        self.csrf = _resume(self, session)

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
    """The same chiefs' boards holding their live (SSE) feed open, reconnecting when it ends.

    The reported time is the time to the answer's headers; the feed is then read for up to
    STREAM_HOLD_S seconds, as a browser tab would, holding one server thread meanwhile.
    """

    abstract = not BOARD_STREAM  # no feed on this branch: this user class is not used
    fixed_count = FIXTURE["counts"]["chiefs"]
    wait_time = constant(0.5)

    def on_start(self):
        _resume(self, next(_chiefs))

    @task
    def follow(self):
        name = f"GET {BOARD_STREAM} (SSE)"
        with self.client.get(
            BOARD_STREAM, stream=True, name=name, timeout=STREAM_HOLD_S + 60, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return
            deadline = time.monotonic() + STREAM_HOLD_S
            for _line in resp.iter_lines():
                if time.monotonic() > deadline:
                    break
            resp.success()


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
