"""The duty switch and live alerts in Debian's chromium, against a live server."""

import shutil
import threading
import time

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from fieldapp import dispatch
from fieldapp.extensions import db
from fieldapp.models import Event, User

pytestmark = pytest.mark.browser

LAT, LON = 27.8170, 114.9230
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(app):
    app.config.update(SERVER_NAME=None, STREAM_SECONDS=20, STREAM_POLL_S=0.2)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("no chromium")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        yield b
        b.close()


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        if check():
            return True
        time.sleep(0.1)
    return False


def test_going_on_duty_posts_position_and_live_offer_alerts(make, live_server, browser):
    station = make.station("BR", lat=LAT, lon=LON)
    officer = make.user(station, "officer", "br_off")
    db.session.commit()
    officer_id = officer.id
    context = browser.new_context(
        base_url=live_server,
        permissions=["geolocation"],
        geolocation={"latitude": LAT + 0.001, "longitude": LON},
        locale="zh-CN",
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill("input[name=username]", "br_off")
    page.fill("input[name=password]", "correct-horse-42")
    page.click("main button[type=submit]")
    page.wait_for_url("**/field/")
    assert page.locator("#duty-status").inner_text().startswith("未值班")
    page.click("label[for=duty-toggle]")
    page.wait_for_function(
        "document.getElementById('duty-status').textContent.startsWith('值班中')"
    )
    assert wait_for(lambda: db.session.get(User, officer_id).position_at is not None)
    me = db.session.get(User, officer_id)
    assert me.duty_status == "on_duty"
    assert abs(me.lat - (LAT + 0.001)) < 1e-6
    page.wait_for_function(
        "document.getElementById('duty-position-at').textContent.indexOf(':') > 0"
    )
    # The live connection is open: an offer now appears with its (personal-data-free) text.
    page.wait_for_function("document.getElementById('duty-live').textContent.length > 0")
    w = make.warning(station, lat=LAT, lon=LON, person_name="孙八", person_phone="13500001111")
    dispatch.dispatch(w)
    db.session.commit()
    assert db.session.scalar(sa.select(Event.kind).where(Event.kind == "offered"))
    page.wait_for_selector("#live-alert:not([hidden])", timeout=10_000)
    title = page.locator("#live-title").inner_text()
    assert title.startswith("新预警")
    assert "孙八" not in page.locator("#live-alert").inner_text()
    assert not errors, errors
    context.close()
