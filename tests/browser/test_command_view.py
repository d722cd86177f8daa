"""The chief's command view in Chromium: the map (tiles from a local stub, the grid when there
are none or they fail, the GCJ-02 shift), the reassign picker's facts, the wall screen following
the live feed, hand entry by map, and the board's first screen on a phone.

Set FIELDAPP_SCREENSHOTS=/some/dir to keep a screenshot of each view for a person to look at.
"""

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldapp import clock, events
from fieldapp.extensions import db
from fieldapp.models import Offer, Warning
from tests import factories
from tests.browser.test_a11y import violations
from tests.tilestub import TileStub

pytestmark = pytest.mark.browser
STATIC = Path(__file__).resolve().parents[2] / "static"
PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1280, "height": 800}


def shot(page, name: str) -> None:
    folder = os.environ.get("FIELDAPP_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def open_page(browser, live_server):
    """open_page(viewport, username, path) -> a logged-in page; contexts closed afterwards.

    Each user logs in once per test; later pages reuse the session cookie.
    """
    contexts = []
    sessions = {}

    def opener(viewport, username, path, **context_args):
        ctx = browser.new_context(
            viewport=viewport, locale="zh-CN", storage_state=sessions.get(username), **context_args
        )
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.csp_errors = []
        page.on(
            "console",
            lambda m: page.csp_errors.append(m.text) if "Content Security Policy" in m.text else 0,
        )
        if username not in sessions:
            page.goto(f"{live_server}/login")
            page.fill("#username", username)
            page.fill("#password", factories.PASSWORD)
            with page.expect_navigation():
                page.click("main form button[type=submit]")
            sessions[username] = ctx.storage_state()
        page.goto(f"{live_server}{path}")
        return page

    yield opener
    for ctx in contexts:
        ctx.close()
    time.sleep(0.3)  # let a last stream poll end before the tables are emptied


@pytest.fixture
def station(make):
    """Station A: a chief, two on-duty officers (one with an old position), two open warnings."""
    now = clock.now()
    a = make.station("A", name="东岭派出所", contact_target_s=300)
    make.user(a, "chief", "chief_a")
    fresh = make.user(
        a,
        "officer",
        "fresh",
        display_name="杨强",
        badge_no="031207",
        on_duty=True,
        lat=a.lat + 0.004,
        lon=a.lon,
        position_age_s=60,
    )
    make.user(
        a,
        "officer",
        "stale",
        display_name="杨强",
        badge_no="046610",
        on_duty=True,
        lat=a.lat - 0.01,
        lon=a.lon + 0.01,
        position_age_s=3600,
    )
    late = make.warning(
        a,
        received_at=now - timedelta(minutes=8),
        status="accepted",
        owner_id=fresh.id,
        lat=a.lat + 0.006,
        lon=a.lon + 0.004,
    )
    due = make.warning(
        a,
        received_at=now - timedelta(minutes=3),
        status="unassigned",
        lat=a.lat - 0.004,
        lon=a.lon - 0.006,
    )
    db.session.commit()
    return {"a": a, "late": late, "due": due, "fresh": fresh}


def _map_ready(page, selector="#board-map"):
    page.wait_for_selector(f"{selector}[data-loaded]")


def _open_popup(page, marker: str):
    """Tap a marker until its popup shows: a tap during the first fit's zoom animation can
    land beside the moving marker."""
    for _ in range(5):
        page.locator(marker).click()
        try:
            page.wait_for_selector(".leaflet-popup-content", timeout=2000)
            return page.locator(".leaflet-popup-content")
        except Exception:  # noqa: BLE001, S112 - try the tap again
            continue
    raise AssertionError(f"no popup for {marker}")


def test_gcj02_against_published_reference_points(browser):
    """The WGS-84 → GCJ-02 shift matches the published values; the way back is exact."""
    page = browser.new_page()
    page.add_script_tag(path=str(STATIC / "js" / "gcj02.js"))
    result = page.evaluate(
        """() => {
        const refs = [  // wgs lat, lon -> gcj lat, lon
          [31.1774276, 121.5272106, 31.17530398364597, 121.531541859215],
          [22.543847, 113.912316, 22.540796131694766, 113.9171764808363],
          [39.911954, 116.377817, 39.91334545536069, 116.38404722455657],
          [39.915, 116.404, 39.91640428150164, 116.41024449916938],
        ];
        const g = window.FieldappGcj02;
        let forward = 0, back = 0;
        for (const [a, b, c, d] of refs) {
          const s = g.toGcj(a, b);
          forward = Math.max(forward, Math.abs(s[0] - c), Math.abs(s[1] - d));
          const w = g.toWgs(c, d);
          back = Math.max(back, Math.abs(w[0] - a), Math.abs(w[1] - b));
        }
        let roundTrip = 0;
        for (let lat = 18.5; lat < 53; lat += 2.7) for (let lon = 74; lon < 135; lon += 3.1) {
          const s = g.toGcj(lat, lon), w = g.toWgs(s[0], s[1]);
          roundTrip = Math.max(roundTrip, Math.abs(w[0] - lat), Math.abs(w[1] - lon));
        }
        return {forward, back, roundTrip, paris: g.toGcj(48.85, 2.35),
                shiftM: (g.toGcj(27.817, 114.923)[1] - 114.923) * 111320 * Math.cos(0.4855)};
      }"""
    )
    page.close()
    assert result["forward"] < 1e-9
    assert result["back"] < 1e-8 and result["roundTrip"] < 1e-8
    assert result["paris"] == [48.85, 2.35]  # outside China: untouched
    assert 300 < result["shiftM"] < 800  # the few hundred metres a Chinese map is off by


def test_map_on_a_grid_with_markers_and_popups_at_360(station, open_page, live_server):
    page = open_page(PHONE, "chief_a", "/board/")
    _map_ready(page)
    assert page.get_attribute("#board-map", "data-base") == "grid"
    assert page.is_visible('[data-role="grid-none"]')
    assert page.locator("path.map-warning").count() == 2
    assert page.locator("path.map-warning.late").count() == 1
    assert page.locator("path.map-warning.due.unassigned").count() == 1
    assert page.locator("path.map-officer.fresh").count() == 1
    assert page.locator("path.map-officer.stale").count() == 1
    assert page.locator(".map-station").count() == 1
    popup = _open_popup(page, "path.map-officer.stale")
    assert "杨强（警号 046610）" in popup.inner_text() and "已过时" in popup.inner_text()
    # A live refresh redraws every marker; the popup being read stays open (the old
    # marker's popup fades out over 200 ms beside the reopened one).
    draws = page.get_attribute("#board-map", "data-draws")
    page.evaluate("document.querySelector('#board-map').fieldappMap.refresh()")
    page.wait_for_function(
        "n => document.querySelector('#board-map').getAttribute('data-draws') !== n", arg=draws
    )
    page.wait_for_function("() => document.querySelectorAll('.leaflet-popup-content').length === 1")
    assert "杨强（警号 046610）" in popup.inner_text()
    page.click(".leaflet-popup-close-button")
    page.wait_for_selector(".leaflet-popup-content", state="detached")
    _open_popup(page, f"path.map-warning.w{station['late'].id}")
    text = popup.inner_text()
    assert f"预警 {station['late'].id}" in text and "民警：杨强（警号 031207）" in text
    shot(page, "map-grid-360")
    href = popup.locator("a").get_attribute("href")
    assert href.endswith(f"/board/warnings/{station['late'].id}")
    # The live map redraws its markers (and closes an open popup) when the feed changes, so
    # the test follows the link's address rather than racing a redraw with a click.
    page.goto(href if href.startswith("http") else live_server + href)
    _map_ready(page, "#warning-map")
    assert page.locator(f"path.map-warning.w{station['late'].id}").count() == 1
    assert page.is_visible(".leaflet-popup-content")  # the page's own warning, opened
    # ... and whole, title included: inside the map, not cut off by its top edge.
    page.wait_for_function(
        """() => {
            const map = document.querySelector('#warning-map');
            const box = map.querySelector('.leaflet-popup').getBoundingClientRect();
            const edge = map.getBoundingClientRect();
            return box.top >= edge.top && box.bottom <= edge.bottom;
        }"""
    )
    assert page.csp_errors == []


def test_tiles_from_the_stub_then_the_grid_when_they_fail(app, station, open_page):
    with TileStub() as stub:
        app.config.update(MAP_TILE_URL=stub.url, MAP_ATTRIBUTION="测试底图")
        page = open_page(DESKTOP, "chief_a", "/board/")
        _map_ready(page)
        page.wait_for_selector("#board-map[data-base=tiles]")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#board-map img.leaflet-tile-loaded')]"
            ".some(i => i.naturalWidth === 256)"
        )
        origin = stub.url.split("{z}")[0]
        assert all(
            src.startswith(origin)
            for src in page.eval_on_selector_all(
                "#board-map img.leaflet-tile", "e => e.map(i => i.src)"
            )
            if not src.startswith("data:")  # Leaflet's blank for a tile it gave up on
        )
        assert stub.requests and "测试底图" in page.inner_text(".leaflet-control-attribution")
        assert not page.is_visible('[data-role="grid-none"]')
        assert page.csp_errors == []
        shot(page, "map-tiles-desktop")

        stub.failing = True
        page = open_page(DESKTOP, "chief_a", "/board/")
        page.wait_for_selector("#board-map[data-base=grid]")
        assert page.is_visible('[data-role="grid-failed"]')
        _map_ready(page)
        assert page.locator("path.map-warning").count() == 2  # positions still drawn
        shot(page, "map-tiles-failed-desktop")


def _marker_position(page, warning_id: int):
    return page.evaluate(
        """id => {
        const map = document.getElementById('board-map').fieldappMap.map;
        let found = null;
        map.eachLayer(l => {
          if (l.options && String(l.options.className).includes(' w' + id)) found = l;
        });
        const p = found.getLatLng();
        return [p.lat, p.lng];
      }""",
        warning_id,
    )


def test_gcj02_tile_source_shifts_the_markers(app, station, open_page):
    w = station["late"]
    with TileStub() as stub:
        app.config.update(MAP_TILE_URL=stub.url, MAP_CRS="gcj02")
        page = open_page(DESKTOP, "chief_a", "/board/")
        _map_ready(page)
        drawn = _marker_position(page, w.id)
        expected = page.evaluate(f"FieldappGcj02.toGcj({w.lat}, {w.lon})")
        assert drawn == pytest.approx(expected, abs=1e-9)
        assert abs(drawn[1] - w.lon) > 0.003  # really shifted
        app.config.update(MAP_CRS="wgs84")
        page = open_page(DESKTOP, "chief_a", "/board/")
        _map_ready(page)
        assert _marker_position(page, w.id) == pytest.approx([w.lat, w.lon], abs=1e-9)


def test_reassign_picker_shows_the_facts_at_360(station, open_page, make):
    a = station["a"]
    make.user(a, "auxiliary", "home", display_name="休息", badge_no="000005")
    db.session.commit()
    w = station["due"]
    page = open_page(PHONE, "chief_a", "/board/")
    page.locator(f"#w{w.id} a.pick").click()
    dialog = page.locator("dialog#picker")
    dialog.wait_for(state="visible")
    cards = dialog.locator(".choice-card")
    assert cards.count() == 3
    first = cards.nth(0).inner_text()
    assert "杨强（警号 031207）" in first and "值班" in first
    assert "距当事人" in first and "在办预警：1 起" in first and "位置更新于 1 分钟前" in first
    assert "未值班" in cards.nth(2).inner_text()
    shot(page, "picker-360")
    cards.nth(1).click()  # the other 杨强, old position
    # A second tap while the first is still on its way sends nothing more: count the
    # submissions that get past the page's guard (this listener runs after it, and stops
    # the navigation so the taps can be counted).
    taps = page.evaluate(
        """() => {
        const form = document.querySelector('dialog form.picker');
        let sent = 0;
        const count = e => { if (!e.defaultPrevented) sent += 1; e.preventDefault(); };
        document.addEventListener('submit', count);
        form.querySelector('button[type=submit]').click();
        form.requestSubmit();
        form.requestSubmit();
        const disabled = form.querySelector('button[type=submit]').disabled;
        document.removeEventListener('submit', count);
        delete form.dataset.sent;
        form.querySelector('button[type=submit]').disabled = false;
        return [sent, disabled];
      }"""
    )
    assert taps == [1, True]
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector(".flash-success")
    assert "已改派给杨强（警号 046610）。" in page.inner_text(".flash-success")
    row = page.locator(f"#w{w.id}")
    assert "已推送给 杨强（警号 046610）" in row.inner_text()
    offers = db.session.scalars(sa.select(Offer).where(Offer.warning_id == w.id)).all()
    assert [(o.reason, o.status) for o in offers] == [("reassign", "pending")]
    # The time left ticks down between refreshes.
    left = row.locator(".offer-left")
    before = int(left.get_attribute("data-left-s"))
    page.wait_for_function(
        f"() => /剩余 (\\d+):(\\d\\d)/.test(document.querySelector('#w{w.id} .offer-left')"
        f".textContent) && Number(RegExp.$1) * 60 + Number(RegExp.$2) < {before}"
    )


def test_wall_screen_is_large_has_no_controls_and_follows_the_feed(app, station, open_page):
    app.config.update(BOARD_STREAM_SECONDS=2)
    page = open_page({"width": 1280, "height": 720}, "chief_a", "/board/wall")
    _map_ready(page, "#wall-map")
    assert (
        page.locator("header, nav, form, button, select, input, .leaflet-control-zoom").count() == 0
    )
    size = page.eval_on_selector(
        ".wall-counts strong", "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert size >= 40
    body = page.eval_on_selector("body", "e => getComputedStyle(e).backgroundColor")
    assert body == "rgb(0, 0, 0)"
    assert page.locator(".wall-row").count() == 2
    shot(page, "wall-1280")
    new = factories.warning(station["a"], status="unassigned")
    events.record("received", warning=new, source="api")
    db.session.commit()
    page.wait_for_selector(f"#wall-w{new.id}", timeout=8_000)  # no reload: the stream said so
    page.wait_for_function(
        "() => document.querySelectorAll('#wall-map path.map-warning').length === 3"
    )


@pytest.mark.parametrize("crs", ["grid", "gcj02"])
def test_hand_entry_by_map(app, station, open_page, crs):
    stub = TileStub()
    if crs == "gcj02":
        stub.__enter__()
        app.config.update(MAP_TILE_URL=stub.url, MAP_CRS="gcj02")
    try:
        page = open_page(PHONE, "chief_a", "/intake/new")
        page.fill("#f-person_name", "周七")
        page.fill("#f-person_phone", "13912345678")
        page.select_option("#f-fraud_type", "fake_loan")
        box = page.locator("#pick-map")
        box.scroll_into_view_if_needed()
        box.click(position={"x": 230, "y": 80})
        page.wait_for_selector("#pick-map[data-picked]")
        lat, lon = float(page.input_value("#f-lat")), float(page.input_value("#f-lon"))
        clicked = page.evaluate("document.getElementById('pick-map').fieldappMap.clicked")
        if crs == "gcj02":
            clicked = page.evaluate(f"FieldappGcj02.toWgs({clicked[0]}, {clicked[1]})")
        assert [lat, lon] == pytest.approx(clicked, abs=6e-7)  # six decimals
        assert lat > station["a"].lat and lon > station["a"].lon  # up and right of the station
        shot(page, f"hand-entry-{crs}-360")
        # Typing stays possible and moves the pin.
        page.fill("#f-lat", "27.82")
        page.fill("#f-lon", "114.93")
        page.locator("#f-lon").dispatch_event("change")
        assert page.get_attribute("#pick-map", "data-picked") == "27.820000,114.930000"
        box.click(position={"x": 230, "y": 80})
        lat, lon = float(page.input_value("#f-lat")), float(page.input_value("#f-lon"))
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/board/**")
        stored = db.session.scalar(sa.select(Warning).where(Warning.person_name == "周七"))
        assert (stored.lat, stored.lon) == pytest.approx((lat, lon), abs=1e-6)
    finally:
        if crs == "gcj02":
            stub.__exit__(None, None, None)


def test_board_first_screen_at_360_shows_warnings_not_filters(station, open_page):
    page = open_page(PHONE, "chief_a", "/board/")
    shot(page, "board-360")
    assert page.eval_on_selector("#filters", "e => e.open") is False
    assert page.locator("#filters").bounding_box()["height"] < 80
    first_row = page.locator("table.board tbody tr").first.bounding_box()
    assert first_row["y"] < PHONE["height"]  # the first warning starts on the first screen
    page.click("#filters summary")
    assert page.is_visible("#f-status")
    desktop = open_page(DESKTOP, "chief_a", "/board/")
    assert desktop.eval_on_selector("#filters", "e => e.open") is True


def test_chief_pages_have_no_serious_violations(station, open_page, live_server):
    page = open_page(PHONE, "chief_a", "/board/", bypass_csp=True)
    _map_ready(page)
    found = violations(page)
    for path in (
        f"/board/warnings/{station['late'].id}",
        "/intake/new",
        "/board/figures",
        "/board/wall",
    ):
        page.goto(f"{live_server}{path}")
        if "/warnings/" in path:
            # The page opens its warning's popup, which fades in: axe would measure the
            # contrast of half-transparent text.
            _map_ready(page, "#warning-map")
            page.wait_for_function(
                "() => { const p = document.querySelector('#warning-map .leaflet-popup');"
                " return p && getComputedStyle(p).opacity === '1'; }"
            )
        found += violations(page)
    assert found == []
