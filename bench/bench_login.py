"""Login answer times: a wrong password for an existing account against an unknown username.

    python bench/bench_login.py                       # SQLite in a temporary file
    python bench/bench_login.py postgresql://postgres@127.0.0.1:5432/postgres
    (or BENCH_DATABASE_URL=...; a scratch database is created and dropped)

The four cases run interleaved, each from an address of its own so the throttle does not
interfere with the unthrottled ones, through the WSGI app (POST /login with its CSRF token).
Prints medians and p95 against a floor measured in the same run (GET /login, which renders the
same page without checking anything), and the known/unknown ratios, which should be about 1:
before this branch a locked existing account answered in ~6 ms and an unknown one in ~140 ms.
"""

import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402  (bench/common.py)
import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from fieldapp.auth.passwords import hash_password  # noqa: E402
from fieldapp.extensions import db  # noqa: E402
from fieldapp.models import LoginThrottle, Station, User  # noqa: E402

ROUNDS = 40


def run(url: str) -> dict:
    app = common.make_app(url, tempfile.mkdtemp(prefix="bench-login-"))
    with app.app_context():
        upgrade()
        station = Station(code="B", name="Bench", lat=27.8, lon=114.9)
        db.session.add(station)
        db.session.flush()
        db.session.add(
            User(
                username="known",
                password_hash=hash_password("right-password-1"),
                display_name="known",
                role="officer",
                station_id=station.id,
            )
        )
        db.session.commit()

    def client_and_token(addr):
        client = app.test_client()
        html = client.get("/login", environ_base={"REMOTE_ADDR": addr}).get_data(as_text=True)
        return client, re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)

    def post(client, token, username, addr):
        started = time.perf_counter()
        resp = client.post(
            "/login",
            data={"username": username, "password": "wrong-password-1", "csrf_token": token},
            environ_base={"REMOTE_ADDR": addr},
        )
        return time.perf_counter() - started, resp.status_code

    # Throttled cases: one address each, past its free failures first.
    throttled = {}
    for name in ("known", "unknown"):
        addr = f"10.9.9.{1 if name == 'known' else 2}"
        client, token = client_and_token(addr)
        for _ in range(6):
            post(client, token, name, addr)
        throttled[name] = (client, token, addr)

    times = {k: [] for k in ("floor", "known", "unknown", "known_waiting", "unknown_waiting")}
    for n in range(ROUNDS):
        # Keep the waiting buckets, drop the others: the account-wide bucket would otherwise
        # fill after 20 rounds and every case would be a throttled one.
        with app.app_context():
            db.session.execute(
                sa.delete(LoginThrottle).where(LoginThrottle.blocked_until.is_(None))
            )
            db.session.commit()
        floor_client = app.test_client()
        started = time.perf_counter()
        floor_client.get("/login")
        times["floor"].append(time.perf_counter() - started)
        for name in ("known", "unknown"):
            addr = f"10.{n // 200}.{n % 200}.{1 if name == 'known' else 2}"
            client, token = client_and_token(addr)
            took, status = post(client, token, name, addr)
            assert status == 401, status
            times[name].append(took)
            client, token, addr = throttled[name]
            took, status = post(client, token, name, addr)
            assert status == 429, status
            times[f"{name}_waiting"].append(took)
    return times


def main() -> None:
    base = (sys.argv[1:] or [os.environ.get("BENCH_DATABASE_URL", "")])[0]
    drop = None
    if base:
        url, drop = common.scratch_pg(base, "bench_login")
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-login-db-')}/bench.db"
    try:
        times = run(url)
    finally:
        if drop:
            drop()
    floor = common.pct(times["floor"], 50)
    print(f"database: {'PostgreSQL' if base else 'SQLite'}; {ROUNDS} rounds, interleaved")
    for key, values in times.items():
        p50, p95 = common.pct(values, 50), common.pct(values, 95)
        print(
            f"{key:16s} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  ({p50 / floor:5.1f}x floor)"
        )
    for case in ("", "_waiting"):
        ratio = common.pct(times[f"known{case}"], 50) / common.pct(times[f"unknown{case}"], 50)
        print(f"known/unknown{case or ' (checked)'}: {ratio:.2f}")


if __name__ == "__main__":
    main()
