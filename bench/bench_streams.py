"""Open live streams on one host: does intake still answer, and how fast does an event arrive?

Starts the app as docs/deploy.md says (gunicorn -c gunicorn.conf.py, gevent workers) on a
scratch PostgreSQL database, then for K open officer streams (0, 500, 1000, 2000, 5000; plus
20 chiefs' boards when K > 0), measured in one run:
  - 30 intake POSTs one after another: p50/p95 against K=0, failures;
  - memory per stream (RSS of the web workers over K=0);
  - a broadcast probe (a help request every on-duty officer hears), 15 times: from its commit
    to its arrival at every open stream, p50/p95/max.
Streams are held by one asyncio client (raw sockets) in this process.

    python bench/bench_streams.py --db postgresql://postgres@127.0.0.1:5432/postgres
"""

import argparse
import asyncio
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import make_app, pct, scratch_pg

ROOT = Path(__file__).resolve().parent.parent
WID = re.compile(rb'"warning_id": (\d+)')
LAT, LON = 27.817, 114.923


def setup(url: str, instance: str, officers: int, chiefs: int):
    """Schema, one station, on-duty officers and chiefs with sessions; their cookies, a token."""
    from flask_migrate import upgrade

    from fieldapp import clock, tokens
    from fieldapp.extensions import db
    from fieldapp.models import Station, User, UserSession

    app = make_app(url, instance)
    with app.app_context():
        upgrade()
        st = Station(code="B1", name="Bench", lat=LAT, lon=LON)
        db.session.add(st)
        db.session.flush()
        now = clock.now()
        users = [
            User(
                username=f"{role}{n}",
                password_hash="x",
                display_name=f"{role} {n}",
                role=role,
                station_id=st.id,
                duty_status="on_duty",
                lat=LAT + n * 1e-5,
                lon=LON,
                accuracy_m=20.0,
                position_at=now,
            )
            for role, count in (("officer", officers), ("chief", chiefs))
            for n in range(count)
        ]
        db.session.add_all(users)
        db.session.flush()
        cookies = {}
        ser = app.session_interface.get_signing_serializer(app)
        for u in users:
            token = secrets.token_urlsafe(16)
            db.session.add(
                UserSession(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    user_id=u.id,
                    created_at=now,
                )
            )
            data = {"_user_id": u.get_id(), "_fresh": False, session_key(): token}
            cookies.setdefault(u.role, []).append(ser.dumps(data))
        _row, plaintext = tokens.create_token("bench", st)
        db.session.commit()
        return app, st.id, cookies, plaintext


def session_key() -> str:
    from fieldapp.auth import sessions

    return sessions.SESSION_KEY


class Streams:
    """K held SSE connections and the arrival times of probe warnings on them."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.open = 0
        self.failed = 0
        self.arrivals: dict[int, list[float]] = {}
        self.tasks = []

    async def _hold(self, path: str, cookie: str, ready: asyncio.Future):
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: b\r\nCookie: session={cookie}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head[:40])
            self.open += 1
            ready.set_result(True)
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    raise RuntimeError("closed")
                now = time.perf_counter()
                for m in WID.finditer(chunk):
                    self.arrivals.setdefault(int(m.group(1)), []).append(now)
        except Exception as exc:  # noqa: BLE001 - any end of a held stream is a failure
            if not ready.done():
                ready.set_result(False)
            else:
                self.open -= 1
            self.failed += 1
            if self.failed <= 3:
                print("stream failed:", repr(exc)[:120], file=sys.stderr)

    async def add(self, path: str, cookies: list[str], parallel: int = 200):
        loop = asyncio.get_running_loop()
        for i in range(0, len(cookies), parallel):
            futures = []
            for cookie in cookies[i : i + parallel]:
                ready = loop.create_future()
                self.tasks.append(asyncio.create_task(self._hold(path, cookie, ready)))
                futures.append(ready)
            await asyncio.gather(*futures)


async def post(host, port, path, body: bytes, headers: dict) -> tuple[int, float]:
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: b\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: application/json\r\nConnection: close\r\n{head}\r\n".encode()
            + body
        )
        status = await asyncio.wait_for(reader.readline(), 10)
        await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return int(status.split()[1]), time.perf_counter() - t0
    except Exception:  # noqa: BLE001 - timeouts and resets count as failures
        return 0, time.perf_counter() - t0


def worker_rss(master: int) -> int:
    kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    total = 0
    for pid in kids.split():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


async def probe(app, station_id, streams: Streams, expected: int, n: int) -> list[float]:
    """Commit a help request n times; seconds from each commit to its arrival at every stream."""
    from fieldapp import clock, events
    from fieldapp.extensions import db
    from fieldapp.models import Warning

    lat = []
    for _ in range(n):
        with app.app_context():
            w = Warning(
                source_ref=f"P{secrets.token_hex(4)}",
                person_name="p",
                person_phone="1",
                fraud_type="other",
                risk_level="high",
                lat=LAT,
                lon=LON,
                station_id=station_id,
                status="assigned",
                received_at=clock.now(),
                last_action_at=clock.now(),
            )
            db.session.add(w)
            db.session.flush()
            events.record("help_requested", warning=w, station_id=station_id)
            db.session.commit()
            wid = w.id
        t0 = time.perf_counter()
        deadline = t0 + 10
        while len(streams.arrivals.get(wid, ())) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        got = streams.arrivals.get(wid, [])
        lat.append((max(got) - t0) if len(got) >= expected else float("inf"))
        await asyncio.sleep(0.1)
    return lat


async def main_async(args, app, station_id, cookies, token, master):
    streams = Streams("127.0.0.1", args.port)
    headers = {"Authorization": f"Bearer {token}"}
    rows, floor = [], None
    for _ in range(5):  # warm both workers up: the floor is not a cold start
        await post("127.0.0.1", args.port, "/api/v1/warnings", b"{}", headers)
    for k in args.levels:
        if k and not streams.tasks:
            await streams.add("/board/stream", cookies["chief"][: args.boards])
        have = len(streams.tasks) - (args.boards if streams.tasks else 0)
        if k > have:
            await streams.add("/api/v1/me/stream", cookies["officer"][have:k])
        await asyncio.sleep(1)
        rss = worker_rss(master)
        times, failed = [], 0
        for i in range(args.intakes):
            body = json.dumps(
                {
                    "source_ref": f"K{k}-{i}-{secrets.token_hex(3)}",
                    "person_name": "李四",
                    "person_phone": "13800138000",
                    "fraud_type": "fake_loan",
                    "risk_level": "high",
                    "location": {"lat": LAT, "lon": LON, "accuracy_m": 50},
                }
            ).encode()
            status, dt = await post("127.0.0.1", args.port, "/api/v1/warnings", body, headers)
            failed += status != 201
            times.append(dt)
        expected = streams.open
        lat = await probe(app, station_id, streams, expected, args.probes) if k else []
        p50, p95 = pct(times, 50), pct(times, 95)
        if floor is None:
            floor = (p50, p95, rss)
        rows.append(
            {
                "K": k,
                "open": streams.open,
                "stream_fail": streams.failed,
                "intake_fail": failed,
                "p50_ms": p50 * 1000,
                "p95_ms": p95 * 1000,
                "p95_ratio": p95 / floor[1],
                "kb_per_stream": (rss - floor[2]) / 1024 / max(streams.open, 1) if k else 0,
                "ev_p50_ms": pct(lat, 50) * 1000 if lat else 0,
                "ev_p95_ms": pct(lat, 95) * 1000 if lat else 0,
                "ev_max_ms": max(lat) * 1000 if lat else 0,
            }
        )
        r = rows[-1]
        print(
            f"K={k:5d} open={r['open']:5d} stream_fail={r['stream_fail']} "
            f"intake_fail={failed}/{args.intakes} p50={r['p50_ms']:.0f}ms "
            f"p95={r['p95_ms']:.0f}ms ({r['p95_ratio']:.2f}x K=0) "
            f"mem/stream={r['kb_per_stream']:.1f}KiB event p50/p95/max="
            f"{r['ev_p50_ms']:.0f}/{r['ev_p95_ms']:.0f}/{r['ev_max_ms']:.0f}ms",
            flush=True,
        )
    for t in streams.tasks:
        t.cancel()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--levels", default="0,500,1000,2000,5000")
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--intakes", type=int, default=30)
    parser.add_argument("--probes", type=int, default=15)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    url, drop = scratch_pg(args.db, "bench_streams")
    instance = tempfile.mkdtemp(prefix="bench_streams_")
    server = None
    try:
        app, station_id, cookies, token = setup(url, instance, max(args.levels), args.boards)
        env = dict(
            os.environ,
            DATABASE_URL=url,
            SECRET_KEY="bench",
            FIELDAPP_INSTANCE_PATH=instance,
            FIELDAPP_BIND=f"127.0.0.1:{args.port}",
            FIELDAPP_WEB_WORKERS=str(args.workers),
            FIELDAPP_WORKER_IN_PROCESS="0",
            FIELDAPP_STREAM_SECONDS="1800",  # held for the whole run: no reconnects measured
            FIELDAPP_INTAKE_RATE_LIMIT="100000/minute",
            FIELDAPP_LIVE_CAPACITY=str(max(args.levels) + args.boards),
        )
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        cmd += ["--chdir", str(ROOT), "fieldapp:create_app()"]
        log = open(os.path.join(instance, "gunicorn.log"), "w")  # noqa: SIM115
        print("server log:", log.name)
        server = subprocess.Popen(cmd, env=env, stderr=log)
        time.sleep(4)
        print(f"gunicorn gevent, {args.workers} workers, PostgreSQL; {max(args.levels)} officers")
        asyncio.run(main_async(args, app, station_id, cookies, token, server.pid))
    finally:
        if server is not None:
            server.terminate()
            server.wait(20)
        drop()


if __name__ == "__main__":
    main()
