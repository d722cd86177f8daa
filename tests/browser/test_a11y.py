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
