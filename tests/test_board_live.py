"""The live board in a real browser: a new warning appears without a reload, also after the
stream has been closed and the browser reconnected on its own (Last-Event-ID).

No timing assertions (the machine may be loaded); the generous selector timeouts only stop a
broken feed from hanging the run.
"""

import logging
import shutil
import threading
import time

import pytest
from werkzeug.serving import make_server

from fieldapp import events
from fieldapp.extensions import db
from tests import factories

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def board_page(app):
    """A live server on a free port and a chromium page; yields (base_url, page)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Short streams, so the test sees the browser reconnect by itself, as after ~55 s.
    app.config.update(BOARD_STREAM_SECONDS=2, BOARD_STREAM_POLL_S=0.2)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["SERVER_NAME"] = f"127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1024, "height": 768}, locale="zh-CN")
        page.set_default_timeout(10_000)
        try:
            yield f"http://127.0.0.1:{server.server_port}", page
        finally:
            browser.close()
            server.shutdown()
            thread.join(5)
            time.sleep(0.5)  # let the last stream poll finish before the tables are emptied
            db.session.remove()


def _new_warning(station):
    w = factories.warning(station, status="unassigned")
    events.record("received", warning=w, source="api")
    db.session.commit()
    return w


def test_new_warnings_appear_live_and_after_reconnecting(board_page, make):
    base, page = board_page
    station = make.station("A")
    make.user(station, "chief", "chief_live")
    db.session.commit()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "chief_live")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/board/")
    time.sleep(0.5)

    first = _new_warning(station)
    page.wait_for_selector(f"#w{first.id}", timeout=5_000)  # no reload: pushed by the stream

    # By now the server has closed at least one stream; EventSource reconnected with
    # Last-Event-ID. A warning made now must still arrive, once.
    time.sleep(2.5)
    second = _new_warning(station)
    page.wait_for_selector(f"#w{second.id}", timeout=5_000)
    assert page.locator(f"#w{first.id}").count() == 1
