"""A new release installs beside the old one and takes over only when the officer says so."""

import time
from pathlib import Path

import pytest
from flask import Response

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from tests import factories
from tests.browser.conftest import cached, login, sw_ready

pytestmark = pytest.mark.browser


def test_update_banner_then_new_version_takes_over(app, make, live_server, context):
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    w = make.warning(st)
    dispatch.make_offer(w, officer, clock.now())
    dispatch.accept(w, officer, clock.now())
    db.session.commit()
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    url = f"{live_server}/field/w/{w.id}"
    page.goto(url)
    cached(page, url)
    assert "fieldapp-static-field-v1" in page.evaluate("caches.keys()")

    source = Path(app.static_folder, "sw.js").read_text(encoding="utf-8")
    assert 'VERSION = "field-v1"' in source
    newer = source.replace('VERSION = "field-v1"', 'VERSION = "field-v2"')
    app.view_functions["core.service_worker"] = lambda: Response(
        newer, mimetype="text/javascript", headers={"Cache-Control": "no-cache"}
    )
    page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.update())")
    page.locator("#sw-update").wait_for(state="visible")
    # Until the officer taps, the old version keeps running with its caches.
    assert "fieldapp-static-field-v1" in page.evaluate("caches.keys()")

    with page.expect_navigation():
        page.click("#sw-update-btn")
    page.wait_for_function(
        "() => caches.keys().then(k => k.includes('fieldapp-static-field-v2')"
        " && !k.includes('fieldapp-static-field-v1'))",
        polling=100,
    )
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    # The officer's open warning still opens with no network under the new version.
    context.set_offline(True)
    page.reload()
    assert "张三" in page.content()


def test_repeat_visit_renders_from_the_cache_when_the_network_is_slow(
    app, make, live_server, context
):
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    w = make.warning(st)
    dispatch.make_offer(w, officer, clock.now())
    dispatch.accept(w, officer, clock.now())
    db.session.commit()
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    url = f"{live_server}/field/w/{w.id}"
    page.goto(url)
    cached(page, url)

    original = app.view_functions["field.warning"]

    def slow_network(**kwargs):
        time.sleep(4)  # one bar of signal: the server's answer takes long to arrive
        return original(**kwargs)

    app.view_functions["field.warning"] = slow_network
    started = time.monotonic()
    page.goto(url, wait_until="domcontentloaded")
    elapsed = time.monotonic() - started
    assert "张三" in page.content()
    assert elapsed < 3.5, elapsed  # the saved copy, not the slow network
    # When the fresh copy arrives the officer is offered it.
    page.locator("#field-flash button").wait_for(timeout=8_000)
