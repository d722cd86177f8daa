"""Issue 10 on the officer's phone (360x640, zh-CN), the offer card: Accept, Decline and the
countdown first, Join absent; the buttons go when the offer expires or a colleague takes it;
lists and the live alert follow the stream; the test alert shows where notifications cannot."""

import pytest

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from tests.browser.fieldpage import in_viewport, open_page, shot

pytestmark = pytest.mark.browser


# --- 4 and 5. the offer comes first; Join is not for the offered officer ------------------


def test_accept_decline_and_countdown_come_first_join_is_absent(offered, live_server, context):
    w = offered["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    for selector in (
        '#offer-region form[data-kind="accept"] button',
        '#offer-region form[data-kind="decline"] button',
        "#offer-region .countdown",
    ):
        assert in_viewport(page, selector), selector
    assert page.locator('form[data-kind="join"]').count() == 0
    assert "距离 150 米" in page.locator("#offer-region").inner_text()
    shot(page, "offer-first")
    # A colleague the chief asks to join gets Join; the officer holding the offer never does.
    from fieldapp import helping

    helping.ask_to_join(w, offered["colleague"], offered["chief"])
    db.session.commit()
    page.reload()
    assert page.locator('form[data-kind="join"]').count() == 0
    other = context.browser.new_context(viewport=page.viewport_size, locale="zh-CN")
    colleague = open_page(other, live_server, f"/field/w/{w.id}", username="mj2")
    assert colleague.locator('form[data-kind="join"]').count() == 1
    other.close()
    page.locator('#offer-region form[data-kind="accept"] button').click()
    page.locator("#receipt-top .receipt").wait_for()
    assert page.locator('form[data-kind="attempt"]').count() == 1
    assert page.locator("#offer-region form").count() == 0


# --- 6. an offer that ends while open --------------------------------------------------------


def test_buttons_go_when_the_offer_expires(make, live_server, context):
    st = make.station("CG", ack_timeout_s=4)
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    w = make.warning(st)
    db.session.commit()
    page = open_page(context, live_server, "/field/")
    offer = dispatch.make_offer(w, officer, clock.now())
    db.session.commit()
    page.goto(f"{live_server}/field/w/{w.id}")
    accept = page.locator('main form[data-kind="accept"]')
    assert accept.count() == 1
    left = (offer.expires_at - clock.now()).total_seconds()
    page.wait_for_timeout(max(left, 0) * 1000)  # the time is up: the page's clock takes them
    page.wait_for_function("() => !document.querySelector('main form[data-kind=\"accept\"]')")
    assert page.locator('main form[data-kind="decline"]').count() == 0
    assert "时间已到" in page.locator("main").inner_text()
    shot(page, "offer-expired")


def test_buttons_go_when_a_colleague_takes_the_offer(offered, live, live_server, context):
    w = offered["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")
    dispatch.reassign(w, offered["colleague"], offered["chief"], clock.now())
    dispatch.accept(w, offered["colleague"], clock.now())
    db.session.commit()
    # The buttons go without a reload. How fast is measured by bench/bench_streams.py (the
    # issue asks for 2 s), not here: a loaded CI machine would make a timed bound flaky.
    page.wait_for_function("() => !document.querySelector('#offer-region form')")
    assert "已接下此预警" in page.locator("#offer-region").inner_text()


# --- 5. live lists and the live alert --------------------------------------------------------


def test_lists_and_alert_follow_a_new_offer_live(make, live, live_server, context):
    st = make.station("CG")
    make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    db.session.commit()
    page = open_page(context, live_server, "/field/")
    assert "暂无待接预警" in page.locator("main").inner_text()
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")
    w = make.warning(st, person_name="孙八")
    dispatch.dispatch(w)
    db.session.commit()
    alert = page.locator("#live-alert")
    alert.wait_for()
    page.locator(f'main form[data-kind="accept"][data-warning-id="{w.id}"]').wait_for()
    assert "暂无待接预警" not in page.locator("main").inner_text()
    assert alert.locator("#live-accept").is_visible()
    assert "剩余" in alert.locator("#live-countdown").inner_text()
    assert "孙八" not in alert.inner_text()
    assert in_viewport(page, "#live-accept button")
    shot(page, "live-offer")
    alert.locator("#live-accept button").click()
    page.wait_for_url(f"**/field/w/{w.id}")
    page.locator("#receipt-top .receipt").wait_for()
    db.session.expire_all()
    assert db.session.get(type(w), w.id).owner_id is not None
    assert page.locator('form[data-kind="attempt"]').count() == 1


def test_my_warnings_list_follows_a_reassignment_live(desk, live, live_server, context):
    """The officer's own list (not only the offers) follows the stream: a warning the chief
    hands to a colleague leaves 我的在办预警 without a reload."""
    w = desk["warning"]
    page = open_page(context, live_server, "/field/")
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")
    mine = page.locator(f"#owned #w{w.id}")
    assert mine.count() == 1
    dispatch.reassign(w, desk["colleague"], desk["chief"], clock.now())
    db.session.commit()
    page.wait_for_function(f"() => !document.querySelector('#owned #w{w.id}')")
    assert page.errors == []


# --- 8. the test alert where notifications cannot show -----------------------------------


def test_test_alert_shows_in_the_page_when_notifications_are_blocked(desk, live_server, context):
    page = open_page(context, live_server, "/field/")
    assert page.evaluate("Notification.permission") != "granted"
    page.locator("button[data-test-alert]").first.click()
    alert = page.locator("#live-alert")
    alert.wait_for()
    assert "测试提醒" in alert.inner_text()
    # Why nothing else showed, and how to fix it, in the alert itself (in view).
    assert "只能显示在本页" in alert.inner_text() and "已发送" not in alert.inner_text()
    assert in_viewport(page, "#live-alert")
    assert "只能显示在本页" in page.locator("#duty [data-test-result]").inner_text()
    shot(page, "test-alert-blocked")
