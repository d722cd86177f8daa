"""Browser tests: the app served by werkzeug in a thread, driven by Debian's chromium.

The live server uses the test's app and database, so a test creates its data through the
factories, commits, and reads the server's changes back through the same session. The
officer-page scenes (`desk`, `offered`) and short live streams (`live`) are at the end.
"""

import logging
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from fieldapp import clock, dispatch
from fieldapp.extensions import db

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def live_server(app):
    """Serve the test app on 127.0.0.1 at a free port; yields the base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.server_port
    app.config["SERVER_NAME"] = f"127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)
        db.session.remove()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(
        viewport={"width": 360, "height": 640}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def login(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/field/**")


def sw_ready(page) -> None:
    """Wait until the service worker controls the page."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


CACHED = """async (url) => {
    // wait_for_function would take the returned promise itself as truthy and return at once:
    // this awaits each look-up instead, polling until the page is saved or 10 s have passed.
    for (let i = 0; i < 100; i++) {
        if (await caches.match(url)) return true;
        await new Promise((r) => setTimeout(r, 100));
    }
    return false;
}"""


def cached(page, url: str) -> None:
    """Wait until the service worker has saved `url` (fails after 10 s)."""
    assert page.evaluate(CACHED, url), f"{url} was not saved by the service worker"


def open_saved_page(context, base: str, path: str, username: str = "mj1"):
    """Log `username` in, open `path` and wait until the service worker has saved it.

    Returns (page, url): the starting point of every offline and cache test.
    """
    from tests import factories

    page = context.new_page()
    login(page, base, username, factories.PASSWORD)
    sw_ready(page)
    url = f"{base}{path}"
    page.goto(url)
    cached(page, url)
    return page, url


# --- officer-page scenes, shared by the field-records, offer-card and parallel-offer tests


def _cast(make):
    """Station CG with two on-duty officers at the station (mj1, mj2) and its chief (sz1)."""
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    colleague = make.user(st, "officer", "mj2", on_duty=True, lat=st.lat, lon=st.lon)
    chief = make.user(st, "chief", "sz1")
    return {"station": st, "officer": officer, "colleague": colleague, "chief": chief}


@pytest.fixture
def desk(make):
    """The cast, and a warning mj1 has accepted and is working."""
    cast = _cast(make)
    w = make.warning(cast["station"], address="东岭村12号")
    dispatch.make_offer(w, cast["officer"], clock.now())
    dispatch.accept(w, cast["officer"], clock.now())
    db.session.commit()
    return {**cast, "warning": w}


@pytest.fixture
def live(app):
    """Live streams that notice a closed page at once (keep-alives every 0.2 s), so a test can
    hold one open and none outlives it."""
    app.config.update(STREAM_SECONDS=20, STREAM_KEEPALIVE_S=0.2)
    yield
    import time

    time.sleep(0.5)


@pytest.fixture
def offered(make):
    """The cast, and a warning offered to mj1 (pending), 148 m north of him."""
    cast = _cast(make)
    st = cast["station"]
    # 148 m north of the officer: the page and the alert both say 150 m.
    w = make.warning(
        st,
        lat=st.lat + 148 / 111_195,
        lon=st.lon,
        address="东岭村12号",
        note="对方自称淘宝客服，要求先转账激活退款",
    )
    offer = dispatch.make_offer(w, cast["officer"], clock.now(), distance_m=148)
    db.session.commit()
    return {**cast, "warning": w, "offer": offer}
