"""The live board in a real browser: a new warning appears without a reload, also after the
stream has been closed and the browser reconnected on its own (Last-Event-ID).

No timing assertions (the machine may be loaded); the generous selector timeouts only stop a
broken feed from hanging the run.
"""

import time

import pytest

from fieldapp import events
from fieldapp.extensions import db
from tests import factories


@pytest.fixture
def board_page(app, browser, live_server):
    """The live server (tests/browser/conftest.py) with short streams, and a desktop page."""
    # Short streams, so the test sees the browser reconnect by itself, as after ~55 s.
    app.config.update(BOARD_STREAM_SECONDS=2)
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield live_server, page
    finally:
        context.close()
        time.sleep(0.5)  # let the last stream poll finish before the tables are emptied


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


def test_the_offer_holder_and_time_left_appear_live(board_page, make):
    """Who holds the offer, and for how long, reaches an open board without a reload."""
    from fieldapp import clock, dispatch, names

    base, page = board_page
    station = make.station("A")
    chief = make.user(station, "chief", "chief_live")
    officer = make.user(
        station, "officer", "mj_live", on_duty=True, lat=station.lat, lon=station.lon
    )
    w = _new_warning(station)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "chief_live")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/board/")
    holder = page.locator(f"#w{w.id} .holder")
    assert holder.locator(".offer-holder").count() == 0
    time.sleep(0.5)

    dispatch.reassign(w, officer, chief, clock.now())
    db.session.commit()
    holder.locator(".offer-holder .offer-left").wait_for(timeout=5_000)
    assert names.person(officer.display_name, officer.badge_no) in holder.inner_text()
