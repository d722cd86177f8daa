"""Load test: Fieldapp under gunicorn + PostgreSQL on 127.0.0.1, then a bare Flask floor.

    python bench/load/run.py                  # 5 minutes per phase (the issue's figure)
    python bench/load/run.py --duration 60s   # a quick run

What it does, all on this machine and bounded in time:
1. creates a fresh PostgreSQL database, applies the migrations, loads a fixture (5 stations,
   200 on-duty officers with fresh positions and passwords, 5 chiefs, an intake token);
2. starts the app as docs/deploy.md says: `gunicorn -c gunicorn.conf.py 'fieldapp:create_app()'`
   (gevent workers, one per core unless --workers), and `flask worker` beside it;
3. runs locust headless: 200 officers' devices, each holding its live stream
   (GET /api/v1/me/stream, reconnecting with Last-Event-ID when the server ends it) and posting
   its position every 30 s; 5 chiefs' boards polling GET /board/ every ~5 s and holding
   /board/stream; the centre sending 10 warnings a second;
4. runs the same user mix against bench/load/bare.py under the same gunicorn.conf.py (gevent;
   its streams send keep-alives only);
5. prints per-route request counts, failures and p50/p95 for both, the p95 ratio, the streams
   held, and whether the app run had zero errors; then stops everything and drops the database.

POST /api/v1/me/position arrives with the push/worker branch: when it answers 404 here the run
says so and the devices poll GET /field/ instead.
"""

import argparse
import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402  (bench/common.py)

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"  # never anything else: load goes to this machine only
PASSWORD = "load-test-pass-1"
STATIONS = [
    ("LD1", "城关派出所", 27.8170, 114.9230),
    ("LD2", "东岭派出所", 27.8600, 114.9900),
    ("LD3", "西江派出所", 27.7800, 114.8600),
    ("LD4", "南山派出所", 27.7400, 114.9400),
    ("LD5", "北塘派出所", 27.9000, 114.9000),
]


def seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError("use e.g. 60s, 5m or 300")
    value, unit = int(match.group(1)), match.group(2) or "s"
    total = value * {"s": 1, "m": 60, "h": 3600}[unit]
    if not 10 <= total <= 3600:
        raise argparse.ArgumentTypeError("between 10 s and 1 h")
    return total


def load_fixture(env: dict, officers: int, chiefs: int) -> dict:
    """Migrate and fill the database in this process, with the worktree's code."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from fieldapp import clock, create_app, tokens
    from fieldapp.auth.passwords import hash_password
    from fieldapp.extensions import db
    from fieldapp.models import Station, User

    app = create_app()
    with app.app_context():
        upgrade()
        password_hash = hash_password(PASSWORD)
        now = clock.now()
        stations = []
        for code, name, lat, lon in STATIONS:
            station = Station(code=code, name=name, lat=lat, lon=lon, ack_timeout_s=90)
            db.session.add(station)
            stations.append(station)
        db.session.flush()
        officer_rows = []
        for n in range(officers):
            station = stations[n % len(stations)]
            lat = station.lat + (n % 7 - 3) * 0.004
            lon = station.lon + (n % 5 - 2) * 0.004
            user = User(
                username=f"load_officer_{n:03d}",
                password_hash=password_hash,
                display_name=f"民警{n:03d}",
                role="officer",
                station_id=station.id,
                duty_status="on_duty",
                duty_changed_at=now,
                lat=lat,
                lon=lon,
                accuracy_m=15,
                position_at=now + timedelta(hours=1),  # stays fresh for the whole run
            )
            db.session.add(user)
            officer_rows.append((user.username, lat, lon))
        chief_names = []
        for n in range(chiefs):
            station = stations[n % len(stations)]
            name = f"load_chief_{n}"
            db.session.add(
                User(
                    username=name,
                    password_hash=password_hash,
                    display_name=f"所长{n}",
                    role="chief",
                    station_id=station.id,
                )
            )
            chief_names.append(name)
        _row, token = tokens.create_token("load test")
        db.session.commit()
        db.engine.dispose()
    return {
        "password": PASSWORD,
        "token": token,
        "officers": officer_rows,
        "chiefs": chief_names,
        "stations": [{"code": c, "lat": lat, "lon": lon} for c, _n, lat, lon in STATIONS],
    }


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the group of a process we started ourselves
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {timeout_s} s")


def gunicorn(app_spec: str, port: int, env: dict, log: Path, pythonpath: str | None):
    """docs/deploy.md's command: gunicorn.conf.py (gevent) configured through its environment."""
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    if pythonpath:
        cmd += ["--pythonpath", pythonpath]
    return start([*cmd, app_spec], {**env, "FIELDAPP_BIND": f"{HOST}:{port}"}, log)


def probe_position(base: str, fixture: dict) -> int:
    """Status of POST /api/v1/me/position for a logged-in officer (404 before the merge)."""
    s = requests.Session()
    page = s.get(f"{base}/login", timeout=10).text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    username = fixture["officers"][0][0]
    s.post(
        f"{base}/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf},
        timeout=30,
        allow_redirects=False,
    )
    home = s.get(f"{base}/field/", timeout=10).text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)
    resp = s.post(
        f"{base}/api/v1/me/position",
        json={"lat": 27.8, "lon": 114.9, "accuracy_m": 10},
        headers={"X-CSRFToken": csrf},
        timeout=10,
    )
    return resp.status_code


def log_in_everyone(base: str, fixture: dict, threads: int = 4) -> list[float]:
    """Log every officer and chief in before the load starts, as their devices already are
    (sessions last 12 h); returns the login times. The argon2 check is deliberately slow, and
    205 of them at once would otherwise swamp the first minute of a two-core machine."""
    from concurrent.futures import ThreadPoolExecutor

    def one(username: str, landing: str):
        s = requests.Session()
        page = s.get(f"{base}/login", timeout=30).text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        started = time.perf_counter()
        resp = s.post(
            f"{base}/login",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf},
            timeout=60,
            allow_redirects=False,
        )
        took = time.perf_counter() - started
        if resp.status_code != 302:
            raise SystemExit(f"login of {username} failed: {resp.status_code}")
        home = s.get(f"{base}{landing}", timeout=30).text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)
        return {"cookies": s.cookies.get_dict(), "csrf": csrf}, took

    jobs = [(u[0], "/field/") for u in fixture["officers"]]
    jobs += [(c, "/board/") for c in fixture["chiefs"]]
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda job: one(*job), jobs))
    n = len(fixture["officers"])
    fixture["officer_sessions"] = [r[0] for r in results[:n]]
    fixture["chief_sessions"] = [r[0] for r in results[n:]]
    return sorted(r[1] for r in results)


def probe_board_stream(base: str, fixture: dict) -> str:
    """The board's SSE path when it exists (it arrives with the board branch), else ""."""
    s = requests.Session()
    s.cookies.update(fixture["chief_sessions"][0]["cookies"])
    try:
        with s.get(f"{base}/board/stream", stream=True, timeout=10) as resp:
            is_sse = resp.headers.get("Content-Type", "").startswith("text/event-stream")
            return "/board/stream" if resp.status_code == 200 and is_sse else ""
    except requests.RequestException:
        return ""


def run_locust(base: str, duration: int, counts: dict, env: dict, prefix: Path, log: Path):
    users = sum(counts.values()) + (counts["chiefs"] if env.get("LOAD_BOARD_STREAM") else 0)
    env = {**env, "LOAD_STREAM_REPORT": f"{prefix}_streams.json"}
    cmd = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless"]
    cmd += ["-u", str(users), "-r", "50", "-t", f"{duration}s", "--host", base]
    cmd += ["--csv", str(prefix), "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"]
    proc = start(cmd, env, log)
    try:
        proc.wait(timeout=duration + 180)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise SystemExit("locust did not finish in time") from None
    stats = read_stats(Path(f"{prefix}_stats.csv"))
    streams = Path(f"{prefix}_streams.json")
    stats["streams"] = json.loads(streams.read_text()) if streams.exists() else {}
    return stats


def read_stats(path: Path) -> dict[str, dict]:
    out = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            key = "ALL" if row["Name"] == "Aggregated" else row["Name"]
            out[key] = {
                "count": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50": float(row["50%"] or 0),
                "p95": float(row["95%"] or 0),
                "rps": float(row["Requests/s"] or 0),
            }
    return out


def failures_detail(prefix: Path) -> list[str]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open() as fh:
        return [
            f"{r['Method']} {r['Name']}: {r['Error'][:160]} x{r['Occurrences']}"
            for r in csv.DictReader(fh)
        ]


def streams_line(label: str, s: dict, expected: int) -> str:
    if not s:
        return f"{label}: no stream figures (locust wrote none)"
    refused = ", ".join(f"{k}: {v}" for k, v in sorted(s["refused"].items())) or "none"
    return (
        f"{label}: held {s['held_min']}-{s['held_max']} (median {s['held_median']}) of "
        f"{expected} devices' and boards' streams once all were up, {s['held_at_end']} at the end; "
        f"{s['opened']} connections ({s['resumed']} resumed with Last-Event-ID, "
        f"{s['ended_by_server']} ended by the server), refused {refused}, "
        f"broken {s['broken']}, {s['events']} events received; longest silence on a "
        f"connection p95 {s.get('silence_p95_s', 0)} s, max {s.get('silence_max_s', 0)} s, "
        f"{s.get('silent_connections', 0)} connections silent > {s.get('silent_s', 30)} s"
    )


def report(
    app_stats: dict,
    bare_stats: dict,
    app_failures: list[str],
    notes: list[str],
    server: str,
    expected_streams: int,
) -> None:
    print("\n== Fieldapp load test (gunicorn + PostgreSQL on 127.0.0.1) vs bare Flask floor")
    print(server)
    app_streams = app_stats.pop("streams", {})
    bare_streams = bare_stats.pop("streams", {})
    head = (
        f"{'route':32} {'n':>7} {'fail':>5} {'p50 ms':>7} {'p95 ms':>7} | "
        f"{'bare n':>7} {'p95 ms':>7} {'p95 ratio':>9}"
    )
    print(head)
    print("-" * len(head))
    for name in sorted(app_stats, key=lambda k: (k == "ALL", k)):
        a = app_stats[name]
        b = bare_stats.get(name, {"count": 0, "p95": 0})
        ratio = f"{a['p95'] / b['p95']:.1f}x" if b["p95"] else "-"
        print(
            f"{name:32} {a['count']:7d} {a['failures']:5d} {a['p50']:7.0f} {a['p95']:7.0f} | "
            f"{b['count']:7d} {b['p95']:7.0f} {ratio:>9}"
        )
    print()
    print(streams_line("app streams ", app_streams, expected_streams))
    if bare_stats:
        print(streams_line("bare streams", bare_streams, expected_streams))
    total_fail = app_stats.get("ALL", {}).get("failures", 0)
    print(f"\nzero errors: {'YES' if total_fail == 0 else f'NO ({total_fail} failed requests)'}")
    for line in app_failures[:10]:
        print("  failure:", line)
    for note in notes:
        print("note:", note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=seconds, default=300, help="per phase, e.g. 60s, 5m")
    parser.add_argument("--officers", type=int, default=200)
    parser.add_argument("--chiefs", type=int, default=5)
    parser.add_argument("--warnings-per-s", type=int, default=10)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="gevent processes (one per core)"
    )
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=55,
        help="FIELDAPP_STREAM_SECONDS: each stream's life before the device reconnects",
    )
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "FIELDAPP_LOAD_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--skip-bare", action="store_true")
    args = parser.parse_args()
    admin_url = (
        sa.engine.make_url(args.admin_url)
        .set(drivername="postgresql+psycopg")
        .render_as_string(hide_password=False)
    )
    if sa.engine.make_url(admin_url).host not in ("127.0.0.1", "localhost", None):
        raise SystemExit("the load test only runs against a database on this machine")
    tmp = Path(tempfile.mkdtemp(prefix="fieldapp-load-"))
    db_url = common.create_database(admin_url, "fieldapp_load")
    procs: list[subprocess.Popen] = []
    notes: list[str] = []
    try:
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "SECRET_KEY": secrets.token_hex(32),
            "FIELDAPP_INSTANCE_PATH": str(tmp / "instance"),
            "FIELDAPP_WORKER_IN_PROCESS": "0",
            "FIELDAPP_WEB_WORKERS": str(args.workers),
            "FIELDAPP_LIVE_CAPACITY": str(args.officers + args.chiefs + 100),
            "FIELDAPP_STREAM_SECONDS": str(args.stream_seconds),
            # One token and one address send everything here; real limits would throttle it.
            "FIELDAPP_INTAKE_RATE_LIMIT": "1000000/minute",
            "FIELDAPP_LOGIN_RATE_LIMIT": "1000000/minute",
        }
        print(f"fixture: {args.officers} officers, {args.chiefs} chiefs, {len(STATIONS)} stations")
        fixture = load_fixture(env, args.officers, args.chiefs)
        counts = {
            "officers": args.officers,
            "chiefs": args.chiefs,
            "centre_users": args.warnings_per_s,
        }
        fixture["counts"] = counts
        fixture_file = tmp / "fixture.json"
        fixture_file.write_text(json.dumps(fixture))
        base = f"http://{HOST}:{args.port}"
        procs.append(gunicorn("fieldapp:create_app()", args.port, env, tmp / "app.log", None))
        if (ROOT / "fieldapp" / "worker.py").exists():
            cmd = [sys.executable, "-m", "flask", "--app", "app", "worker"]
            procs.append(start(cmd, env, tmp / "worker.log"))
        else:
            notes.append("no fieldapp/worker.py on this branch: outbox rows were not processed")
        wait_up(f"{base}/healthz")
        status = probe_position(base, fixture)
        logins = log_in_everyone(base, fixture)
        p95 = logins[int(len(logins) * 0.95) - 1]
        notes.append(
            f"{len(logins)} logins before the load (4 at a time): "
            f"p50 {logins[len(logins) // 2] * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (argon2id)"
        )
        fixture_file.write_text(json.dumps(fixture))
        board_stream = probe_board_stream(base, fixture)
        if not board_stream:
            notes.append("no SSE feed at /board/stream (arrives with the board branch)")
        position = status < 400
        if not position:
            notes.append(
                f"POST /api/v1/me/position answered {status} (arrives with the push branch): "
                "the devices polled GET /field/ every 30 s instead"
            )
        loc_env = {
            **env,
            "LOAD_FIXTURE": str(fixture_file),
            "LOAD_POSITION": "1" if position else "0",
            "LOAD_BOARD_STREAM": board_stream,
        }
        print(f"phase 1: Fieldapp, {args.duration} s ...", flush=True)
        app_stats = run_locust(
            base, args.duration, counts, loc_env, tmp / "app", tmp / "locust-app.log"
        )
        app_failures = failures_detail(tmp / "app")
        for proc in procs:
            stop(proc)
        bare_stats: dict = {}
        if not args.skip_bare:
            bare_port = args.port + 1
            bare = gunicorn("bare:app", bare_port, env, tmp / "bare.log", str(HERE))
            procs.append(bare)
            wait_up(f"http://{HOST}:{bare_port}/login")
            print(f"phase 2: bare Flask floor, {args.duration} s ...", flush=True)
            bare_env = {**loc_env, "LOAD_BOARD_STREAM": "/board/stream" if board_stream else ""}
            bare_stats = run_locust(
                f"http://{HOST}:{bare_port}",
                args.duration,
                counts,
                bare_env,
                tmp / "bare",
                tmp / "locust-bare.log",
            )
        server = (
            f"server, app and floor alike: gunicorn -c gunicorn.conf.py (gevent), {args.workers} "
            f"workers, streams end after {args.stream_seconds:g} s"
        )
        expected = args.officers + (args.chiefs if board_stream else 0)
        report(app_stats, bare_stats, app_failures, notes, server, expected)
    finally:
        for proc in procs:
            stop(proc)
        common.drop_database(admin_url, db_url)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
