"""`flask --app app serve`, the README's start, as a newcomer runs it: gunicorn with gevent
(gunicorn.conf.py, as docs/deploy.md), the embedded SQLite file, the demo, and the outbox
worker inside the web process sending the demo's SMS fallbacks (printed by the log backend)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A bound for a loaded CI machine (migrations, the demo, gunicorn's boot), not a measurement.
START_S = 90


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn serves on Unix only")
def test_serve_starts_the_demo_under_gunicorn_with_the_worker_in_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIELDAPP_", "DATABASE_"))}
    env.update(FIELDAPP_INSTANCE_PATH=str(tmp_path), HOME=str(tmp_path))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_S
        status = None
        while status is None:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                    status = r.status
            except OSError:
                time.sleep(0.2)
        assert status == 200
        # The demo's warnings without an officer's device get their SMS at once.
        while "fieldapp.sms" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert "Demo county loaded" in text and "Password for every demo user" in text
        assert "Using worker: gevent" in text
        assert re.search(r"fieldapp\.worker: worker \S+ started", text)
        sms = re.findall(r"fieldapp\.sms: sms \(log backend\) .*", text)
        assert sms and all("to=*" in line for line in sms)  # the number masked
        assert (tmp_path / "fieldapp.db").exists()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
