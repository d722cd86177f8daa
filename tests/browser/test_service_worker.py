"""A new release installs beside the old one and takes over only when the officer says so."""

import time
from pathlib import Path

import pytest
from flask import Response

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from tests import factories
from tests.browser.conftest import cached, login, open_saved_page, sw_ready

pytestmark = pytest.mark.browser


def test_update_banner_then_new_version_takes_over(app, make, live_server, context):
    page, _url, _w = _saved_warning_page(app, make, live_server, context)
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


def _saved_warning_page(app, make, live_server, context):
    """An officer whose warning page is saved on the phone; returns (page, url, warning)."""
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    w = make.warning(st)
    dispatch.make_offer(w, officer, clock.now())
    dispatch.accept(w, officer, clock.now())
    db.session.commit()
    page, url = open_saved_page(context, live_server, f"/field/w/{w.id}")
    return page, url, w


def _slow_network(app, seconds: float) -> list:
    """From now on the warning page takes `seconds` to arrive (one bar of signal).

    Returns the list of requests the server received for it."""
    original = app.view_functions["field.warning"]
    hits = []

    def slow(**kwargs):
        hits.append(kwargs)
        time.sleep(seconds)
        return original(**kwargs)

    app.view_functions["field.warning"] = slow
    return hits


def test_repeat_visit_renders_from_the_cache_then_the_fresh_copy_swaps_in(
    app, make, live_server, context
):
    page, url, w = _saved_warning_page(app, make, live_server, context)
    w.person_name = "李四"  # the server's copy has changed since the page was saved
    db.session.commit()
    hits = _slow_network(app, 5)

    # The saved copy shows at once: the navigation commits and the page reads well before the
    # 5 s network answer (and before the old 2 s network wait would have given up).
    page.goto(url, wait_until="commit", timeout=1_500)
    page.locator(".person", has_text="张三").wait_for(timeout=1_000)
    assert "李四" not in page.content()

    # The fresh copy arrives in the background and, the officer being idle, replaces it by
    # itself, from the cache (no second trip to the slow network) and with no banner.
    page.locator(".person", has_text="李四").wait_for(timeout=15_000)
    page.wait_for_load_state("domcontentloaded")
    assert "张三" not in page.content()
    assert page.locator("#field-flash button").count() == 0
    assert len(hits) == 1
    assert "李四" in page.evaluate("url => caches.match(url).then(r => r.text())", url)


def test_fresh_copy_waits_behind_a_banner_while_the_officer_types(app, make, live_server, context):
    page, url, w = _saved_warning_page(app, make, live_server, context)
    w.person_name = "李四"
    db.session.commit()
    original = app.view_functions["field.warning"]
    _slow_network(app, 3)

    page.goto(url, wait_until="commit", timeout=1_500)
    note = page.locator("#attempt-note")
    note.fill("正在输入")  # the officer is writing a note: the page must not be pulled away
    banner = page.locator("#field-flash button")
    banner.wait_for(timeout=15_000)
    assert "此页面已有更新的内容" in page.locator("#field-flash").inner_text()
    assert note.input_value() == "正在输入"
    assert page.locator(".person").inner_text() == "张三"

    app.view_functions["field.warning"] = original
    with page.expect_navigation():
        banner.click()
    page.locator(".person", has_text="李四").wait_for()


def test_an_ended_session_never_shows_the_saved_pages_again(app, make, live_server, context):
    page, url, w = _saved_warning_page(app, make, live_server, context)
    # The session ended on the server without a logout (a shared phone handed on).
    w.owner.session_version += 1
    db.session.commit()
    page.goto(url, wait_until="commit")
    # The background check finds no session: the saved pages are wiped and the login shows.
    page.wait_for_url("**/login**", timeout=15_000)
    assert not page.evaluate("url => caches.match(url).then(r => !!r)", url)


def test_the_next_officer_never_opens_the_previous_ones_saved_home(app, make, live_server, context):
    st = make.station("CG")
    first = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    second = make.user(st, "officer", "mj2", on_duty=True, lat=st.lat, lon=st.lon)
    db.session.commit()
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    home = f"{live_server}/field/"
    page.goto(home)
    cached(page, home)
    first.session_version += 1  # mj1's session ends without a logout; mj2 takes the phone
    db.session.commit()

    # The home is slow to arrive: a saved copy, if one were left, would show first.
    original = app.view_functions["field.index"]

    def slow():
        time.sleep(3)
        return original()

    app.view_functions["field.index"] = slow
    login(page, live_server, "mj2", factories.PASSWORD)
    page.wait_for_load_state("domcontentloaded")
    assert page.locator("#queue").get_attribute("data-user-id") == str(second.id)
