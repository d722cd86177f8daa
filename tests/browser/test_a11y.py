"""axe-core finds no serious or critical violations on the login page, home and warning page."""

from pathlib import Path

import pytest

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from tests import factories
from tests.browser.conftest import login

pytestmark = pytest.mark.browser
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    report = page.evaluate("() => axe.run(document)")
    assert report["passes"], "axe did not run"
    found = report["violations"]
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def axe_context(browser):
    # The injected axe script is inline; the app's CSP forbids that, so this context skips it.
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, bypass_csp=True)
    yield ctx
    ctx.close()


def test_no_serious_violations(make, live_server, axe_context):
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    w = make.warning(st, address="东岭村12号")
    dispatch.make_offer(w, officer, clock.now())
    dispatch.accept(w, officer, clock.now())
    offered = make.warning(st)
    dispatch.make_offer(offered, officer, clock.now())
    db.session.commit()
    page = axe_context.new_page()
    page.goto(f"{live_server}/login")
    assert violations(page) == []
    login(page, live_server, "mj1", factories.PASSWORD)
    assert violations(page) == []
    page.goto(f"{live_server}/field/w/{w.id}")
    assert violations(page) == []
    page.goto(f"{live_server}/field/settings")
    assert violations(page) == []


def test_the_header_takes_two_rows_on_a_phone_and_log_out_is_one_tap_away(
    make, live_server, context
):
    """At 360 px the header is brand, language and the user's name, then the page links: the
    first offer's Accept is not pushed down by a third row of log-out buttons."""
    st = make.station("HD")
    make.user(st, "officer", "mj1", display_name="欧阳晓明")
    db.session.commit()
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    tap = 44
    assert page.locator(".topbar").bounding_box()["height"] <= 2 * tap + 24
    assert page.locator("#logout-form button").is_hidden()
    page.click(".account-menu summary")
    assert "欧阳晓明" in page.locator(".account-menu summary").inner_text()
    page.click("#logout-form button")
    page.wait_for_url("**/login**")
