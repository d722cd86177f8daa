"""Benchmark: the live board and a month's figures over a county-sized history.

    python bench/bench_board.py                                   # SQLite (temporary file)
    python bench/bench_board.py postgresql://postgres@127.0.0.1:5432/test
    BENCH_DATABASE_URL=postgresql://... python bench/bench_board.py

The database is built by the migrations (so the indexes measured are the shipped ones), then
filled with Core executemany: 3 stations, 60 field users, 100,000 closed warnings spread over
the past year (offers, attempts, outcomes) and 1,000 open ones. On PostgreSQL a scratch
database is made beside the one named in the URL and dropped afterwards. Targets: board ≤ 150 ms, a month's figures ≤ 500 ms.
Each figure is printed beside a floor measured in the same run (a bare count(*) and a bare
Flask endpoint), so slow machines show as slow floors, not as failures.
"""

import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402  (bench/common.py)
import sqlalchemy as sa  # noqa: E402
from flask import has_app_context  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from fieldapp import board_read, clock, figures, periods  # noqa: E402
from fieldapp.extensions import db  # noqa: E402
from fieldapp.models import (  # noqa: E402
    ContactAttempt,
    Offer,
    Outcome,
    Station,
    User,
    Warning,
)

CLOSED = int(os.environ.get("BENCH_CLOSED", 100_000))
OPEN = int(os.environ.get("BENCH_OPEN", 1_000))
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
FRAUD = ["online_shopping_refund", "fake_loan", "impersonating_boss", "order_brushing", "other"]
OUTCOMES = ["persuaded"] * 5 + ["not_fraud"] * 3 + ["unreachable", "refused", "already_lost"]


def _naive(dt: datetime) -> datetime:
    # The UTCDateTime column type stores aware UTC as naive itself.
    return dt


def fill(rng: random.Random) -> dict:
    """Bulk-insert the county with Core executemany."""
    conn = db.session.connection()
    stations = [
        {"id": i, "code": f"S{i}", "name": f"Station {i}", "lat": 27.8 + i / 10, "lon": 114.9}
        for i in (1, 2, 3)
    ]
    conn.execute(sa.insert(Station), stations)
    users = []
    for n in range(1, 61):
        users.append(
            {
                "id": n,
                "username": f"u{n}",
                "password_hash": "x",
                "display_name": f"Officer {n}",
                "role": "officer" if n % 4 else "auxiliary",
                "station_id": 1 + n % 3,
                "duty_status": "on_duty",
            }
        )
    users.append(
        {
            "id": 61,
            "username": "admin",
            "password_hash": "x",
            "display_name": "Admin",
            "role": "admin",
            "station_id": 1,
            "duty_status": "off_duty",
        }
    )
    conn.execute(sa.insert(User), users)
    by_station = {
        s["id"]: [u["id"] for u in users[:60] if u["station_id"] == s["id"]] for s in stations
    }
    warnings, offers, attempts, outcomes = [], [], [], []
    year = 365 * 24 * 3600
    for wid in range(1, CLOSED + OPEN + 1):
        closed = wid <= CLOSED
        station = 1 + wid % 3
        staff = by_station[station]
        received = NOW - timedelta(
            seconds=rng.randint(3600, year) if closed else rng.randint(10, 3000)
        )
        owner = rng.choice(staff)
        accepted = received + timedelta(seconds=rng.randint(5, 200))
        contact = accepted + timedelta(seconds=rng.randint(20, 600))
        row = {
            "id": wid,
            "source_ref": f"B{wid}",
            "person_name": "x",
            "person_phone": "13800000000",
            "fraud_type": rng.choice(FRAUD),
            "risk_level": "high",
            "amount_at_risk": Decimal(rng.randint(1, 200) * 100),
            "station_id": station,
            "status": "resolved"
            if closed
            else rng.choice(["offered", "accepted", "in_contact", "unassigned"]),
            "owner_id": owner,
            "received_at": _naive(received),
            "accepted_at": _naive(accepted),
            "first_contact_at": _naive(contact) if closed or wid % 2 else None,
            "last_action_at": _naive(contact),
            "resolved_at": _naive(contact + timedelta(seconds=300)) if closed else None,
        }
        warnings.append(row)
        offers.append(
            {
                "warning_id": wid,
                "officer_id": owner,
                "rank": 1,
                "status": "accepted",
                "reason": "dispatch",
                "created_at": row["received_at"],
            }
        )
        if wid % 5 == 0:
            offers.append(
                {
                    "warning_id": wid,
                    "officer_id": rng.choice(staff),
                    "rank": 2,
                    "status": "declined",
                    "reason": "dispatch",
                    "created_at": row["received_at"],
                }
            )
        if closed or wid % 2:
            outcome = rng.choice(OUTCOMES)
            attempts.append(
                {
                    "client_id": f"a{wid}",
                    "warning_id": wid,
                    "user_id": owner,
                    "channel": rng.choice(["phone", "wechat_video", "visit"]),
                    "reached": outcome != "unreachable",
                    "attempted_at": row["first_contact_at"] or row["last_action_at"],
                    "created_at": row["last_action_at"],
                }
            )
            if closed:
                outcomes.append(
                    {
                        "warning_id": wid,
                        "outcome": outcome,
                        "loss_amount": row["amount_at_risk"] if outcome == "already_lost" else None,
                        "app_installed": outcome == "persuaded" and wid % 3 > 0,
                        "recorded_by_id": owner,
                        "recorded_at": row["resolved_at"],
                        "defrauded_after": wid % 97 == 0,
                    }
                )
    for table, rows in (
        (Warning, warnings),
        (Offer, offers),
        (ContactAttempt, attempts),
        (Outcome, outcomes),
    ):
        for i in range(0, len(rows), 5000):
            conn.execute(sa.insert(table.__table__), rows[i : i + 5000])
    db.session.commit()
    if conn.dialect.name == "postgresql":
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
    else:
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
    return {"warnings": len(warnings), "offers": len(offers), "attempts": len(attempts)}


def timed(fn, repeat: int = 7) -> float:
    """Median milliseconds of `repeat` runs after one warm-up."""
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
        if has_app_context():
            db.session.rollback()
    return statistics.median(runs)


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_DATABASE_URL", "")
    drop = None
    if base:
        # A scratch database beside the one named: that one is never touched.
        url, drop = common.scratch_pg(base, "bench_board")
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-board-')) / 'bench.db'}"
    app = common.make_app(
        url,
        tempfile.mkdtemp(prefix="bench-inst-"),
        WTF_CSRF_ENABLED=False,
        TESTING=True,
    )
    try:
        measure(app)
    finally:
        if drop:
            drop()


def measure(app) -> None:
    """Fill the database, time the board and the figures, print them beside their floors."""
    clock.now = lambda: NOW
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        counts = fill(random.Random(5))
        print(
            f"database: {db.engine.dialect.name}; filled {counts} in {time.perf_counter() - started:.1f} s"
        )

        floor_count = timed(lambda: db.session.scalar(sa.text("SELECT count(*) FROM warnings")))
        admin = db.session.get(User, 61)
        station1 = sa.true()
        board_all = timed(lambda: board_read.open_warnings(station1, board_read.Filters(), NOW))
        one = Warning.station_id == 1
        board_one = timed(lambda: board_read.open_warnings(one, board_read.Filters(), NOW))
        month = periods.Period(
            NOW.date().replace(day=1) - timedelta(days=31), NOW.date().replace(day=1)
        )
        month = periods.Period(month.start.replace(day=1), month.end)
        fig_county = timed(lambda: figures.compute(month, None), repeat=5)
        fig_station = timed(lambda: figures.compute(month, 1), repeat=5)
        n_month = figures.totals(month, None).received
        admin_id = admin.id

    client = app.test_client()
    with client.session_transaction() as sess, app.app_context():
        user = db.session.get(User, admin_id)
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True

    def get(path):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        return resp

    floor_http = timed(lambda: get("/healthz"))
    page = get("/board/").get_data(as_text=True)
    rows = len(re.findall(r'<tr id="w\d+"', page))
    http_board = timed(lambda: get("/board/"), repeat=5)
    http_board_one = timed(lambda: get("/board/?station=1"), repeat=5)
    # The map follows every board refresh: its data must cost no more than the board.
    http_map = timed(lambda: get("/board/map.json"), repeat=5)
    http_wall = timed(lambda: get("/board/wall?station=1"), repeat=5)
    http_figures = timed(
        lambda: get(
            f"/board/figures?period=custom&start={month.start}&end={month.end - timedelta(days=1)}"
        ),
        repeat=3,
    )

    def line(name, ms, target=None, floor=None):
        parts = [f"{name:<44} {ms:8.1f} ms"]
        if target:
            parts.append(f"target {target} ms {'OK' if ms <= target else 'OVER'}")
        if floor:
            parts.append(f"{ms / floor:7.1f}× floor")
        print("  ".join(parts))

    print(
        f"open warnings on the board: {rows}; warnings in the month {month.start}..{month.end}: {n_month}"
    )
    line("floor: SELECT count(*) FROM warnings", floor_count)
    line("floor: GET /healthz (bare Flask endpoint)", floor_http)
    line("board query, all stations (1,000 open)", board_all, 150, floor_count)
    line("board query, one station", board_one, 150, floor_count)
    line("GET /board/ (admin, all stations, rendered)", http_board, 150, floor_http)
    line("GET /board/?station=1 (rendered)", http_board_one, 150, floor_http)
    line("GET /board/map.json (admin, all stations)", http_map, 150, floor_http)
    line("GET /board/wall?station=1 (rendered)", http_wall, 150, floor_http)
    line("figures.compute month, county (+ last year)", fig_county, 500, floor_count)
    line("figures.compute month, one station", fig_station, 500, floor_count)
    line("GET /board/figures month (rendered)", http_figures, 500, floor_http)


if __name__ == "__main__":
    main()
