"""Nearest-officer choice over 10,000 officers with positions: p50/p95 on SQLite and PostgreSQL.

    python bench/bench_nearest.py                       # SQLite in a temporary file
    python bench/bench_nearest.py postgresql://postgres@127.0.0.1:5432/postgres
    (or BENCH_DATABASE_URL=...; a scratch database is created and dropped)

Prints the time of `nearest.nearest_candidates` + `nearest.choose` against a floor measured
in the same run (a primary-key lookup of one user), and checks the 5 ms p95 target.
"""

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402  (bench/common.py)
from flask_migrate import upgrade  # noqa: E402

from fieldapp import nearest  # noqa: E402
from fieldapp.extensions import db  # noqa: E402
from fieldapp.models import Station, User  # noqa: E402

OFFICERS = 10_000
QUERIES = 300
CENTRE = (27.8170, 114.9230)


def run(url: str) -> dict:
    app = common.make_app(url, tempfile.mkdtemp(prefix="bench-nearest-"))
    rnd = random.Random(42)
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    with app.app_context():
        upgrade()
        station = Station(code="B", name="Bench", lat=CENTRE[0], lon=CENTRE[1])
        db.session.add(station)
        db.session.flush()
        rows = []
        for i in range(OFFICERS):
            on = rnd.random() < 0.7
            age = rnd.choice([30, 120, 600, 3600]) if on else 7200
            rows.append(
                {
                    "username": f"u{i}",
                    "password_hash": "x",
                    "display_name": f"u{i}",
                    "role": "officer" if rnd.random() < 0.8 else "auxiliary",
                    "station_id": station.id,
                    "duty_status": "on_duty" if on else "off_duty",
                    # A province-sized area: about 110 km x 100 km.
                    "lat": CENTRE[0] + rnd.uniform(-0.5, 0.5),
                    "lon": CENTRE[1] + rnd.uniform(-0.5, 0.5),
                    "accuracy_m": 20.0,
                    "position_at": now - timedelta(seconds=age),
                    "active": True,
                }
            )
        db.session.execute(sa.insert(User), rows)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE users"))
            db.session.commit()
        else:
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        station = db.session.get(Station, station.id)
        points = [
            (CENTRE[0] + rnd.uniform(-0.5, 0.5), CENTRE[1] + rnd.uniform(-0.5, 0.5))
            for _ in range(QUERIES)
        ]
        for lat, lon in points[:20]:  # warm up caches and statement cache
            nearest.choose(nearest.nearest_candidates(station, lat, lon, now))
        floor, times = [], []
        for lat, lon in points:
            t0 = time.perf_counter()
            db.session.get(User, rnd.randint(1, OFFICERS), populate_existing=True)
            floor.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pick = nearest.choose(nearest.nearest_candidates(station, lat, lon, now))
            times.append(time.perf_counter() - t0)
            assert pick is not None
            db.session.rollback()
        dialect = db.engine.dialect.name
        db.session.remove()
        db.engine.dispose()
    return {"dialect": dialect, "times": times, "floor": floor}


def report(result: dict) -> None:
    t, f = result["times"], result["floor"]
    p50, p95 = common.pct(t, 50) * 1000, common.pct(t, 95) * 1000
    f50 = common.pct(f, 50) * 1000
    print(
        f"{result['dialect']:>10}: nearest over {OFFICERS} officers p50 {p50:.2f} ms, "
        f"p95 {p95:.2f} ms, mean {statistics.mean(t) * 1000:.2f} ms; "
        f"floor (pk lookup) p50 {f50:.3f} ms; p50 ratio {p50 / f50:.1f}x; "
        f"target p95 <= 5 ms: {'OK' if p95 <= 5 else 'MISSED'}"
    )


def main() -> None:
    pg = (sys.argv[1] if len(sys.argv) > 1 else "") or os.environ.get("BENCH_DATABASE_URL", "")
    sqlite_dir = tempfile.mkdtemp(prefix="bench-nearest-db-")
    report(run(f"sqlite:///{sqlite_dir}/bench.db"))
    if pg:
        url, drop = common.scratch_pg(pg, "bench_nearest")
        try:
            report(run(url))
        finally:
            drop()


if __name__ == "__main__":
    main()
