"""Issue 12.8 on the phone (360x640, zh-CN): a high-risk warning offered to two officers at
once; when one accepts, the other's open page says so and its Accept is disabled."""

import os

import pytest

from fieldapp import dispatch
from fieldapp.extensions import db
from tests import factories
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_the_second_officer_sees_the_offer_taken(make, live, live_server, browser, context):
    st = make.station("CG", parallel_offers_high=2)
    first = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    second = make.user(st, "officer", "mj2", on_duty=True, lat=st.lat + 0.001, lon=st.lon)
    w = make.warning(st, risk_level="high")
    dispatch.dispatch(w)
    assert sorted(o.officer_id for o in w.offers) == sorted([first.id, second.id])
    db.session.commit()

    page = context.new_page()
    login(page, live_server, "mj2", factories.PASSWORD)
    page.goto(f"{live_server}/field/w/{w.id}")
    assert page.locator('#offer-region form[data-kind="accept"]').count() == 1
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")

    other = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN")
    try:
        theirs = other.new_page()
        login(theirs, live_server, "mj1", factories.PASSWORD)
        theirs.goto(f"{live_server}/field/w/{w.id}")
        theirs.click('#offer-region form[data-kind="accept"] button')
        region = page.locator("#offer-region")
        region.get_by_text("已被其他民警接受").first.wait_for(timeout=5000)
        page.locator("#offer-region button[disabled]").wait_for(timeout=5000)
        assert page.locator('#offer-region form[data-kind="accept"]').count() == 0
        assert page.locator("#offer-region button[disabled]").inner_text().strip() == "接受"
        if os.environ.get("FIELDAPP_SHOTS"):
            page.screenshot(path=os.path.join(os.environ["FIELDAPP_SHOTS"], "offer-taken.png"))
    finally:
        other.close()
    db.session.expire_all()
    assert db.session.get(type(w), w.id).owner_id == first.id
