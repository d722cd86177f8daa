"""The chief's map data, its tile settings, the wall screen, and who holds a pending offer."""

import json
import re
from datetime import timedelta

import pytest

from fieldapp import dispatch, tiles
from fieldapp.extensions import db
from tests.boarddata import warning


@pytest.fixture
def county(make, fake_clock):
    """Station A with four people and three open warnings; station B with one of each."""
    now = fake_clock.now()
    a = make.station("A", name="东岭派出所", contact_target_s=300, position_stale_s=900)
    b = make.station("B", name="西山派出所", lat=28.2, lon=115.3)
    people = {
        "chief_a": make.user(a, "chief", "chief_a"),
        "chief_b": make.user(b, "chief", "chief_b"),
        "admin": make.user(a, "admin", "root"),
        # on duty, fresh position, badge: drawn, fresh
        "fresh": make.user(
            a,
            "officer",
            "fresh",
            display_name="杨强",
            badge_no="031207",
            on_duty=True,
            lat=a.lat + 0.01,
            lon=a.lon,
            position_age_s=120,
        ),
        # on duty, position 40 min old: drawn, out of date
        "stale": make.user(
            a,
            "auxiliary",
            "stale",
            display_name="杨强",
            badge_no="046610",
            on_duty=True,
            lat=a.lat,
            lon=a.lon + 0.02,
            position_age_s=2400,
        ),
        # on duty, never sent a position: counted, not drawn
        "nowhere": make.user(a, "officer", "nowhere", on_duty=True),
        # off duty: not on the map at all
        "home": make.user(a, "officer", "home", lat=a.lat, lon=a.lon),
        "b_officer": make.user(
            b, "officer", "b_officer", display_name="赵警官", on_duty=True, lat=b.lat, lon=b.lon
        ),
    }
    w = {
        "late": warning(
            make,
            a,
            now - timedelta(minutes=10),
            owner=people["fresh"],
            accept_s=20,
            status="in_contact",
            attempts=[("phone", False)],
        ),
        "due": warning(make, a, now - timedelta(minutes=3), status="unassigned"),
        "nowhere": warning(make, a, now - timedelta(minutes=1), status="unassigned"),
        "closed": warning(
            make,
            a,
            now - timedelta(hours=3),
            owner=people["fresh"],
            accept_s=5,
            contact_s=30,
            outcome="persuaded",
            attempts=[("phone", True)],
        ),
        "other": warning(make, b, now - timedelta(minutes=2), status="unassigned"),
    }
    w["nowhere"].lat = w["nowhere"].lon = None
    db.session.commit()
    return {"a": a, "b": b, "w": w, **people}


def _map(client, query=""):
    resp = client.get(f"/board/map.json{query}")
    assert resp.status_code == 200, resp.status_code
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.get_json()


def test_chief_map_is_the_own_station_only(county, client, auth):
    auth.login("chief_a")
    data = _map(client)
    assert [s["title"] for s in data["stations"]] == ["东岭派出所 (A)"]
    assert {o["id"] for o in data["officers"]} == {county["fresh"].id, county["stale"].id}
    ids = {w["id"] for w in data["warnings"]}
    assert ids == {county["w"]["late"].id, county["w"]["due"].id}
    # Asking for station B's map, or B's warning as the focus, changes nothing and leaks nothing.
    assert _map(client, f"?station={county['b'].id}") == data
    focused = _map(client, f"?focus={county['w']['other'].id}")
    assert county["w"]["other"].id not in {w["id"] for w in focused["warnings"]}


def test_admin_map_covers_the_county_or_one_station(county, client, auth):
    auth.login("root")
    data = _map(client)
    assert len(data["stations"]) == 2
    assert county["w"]["other"].id in {w["id"] for w in data["warnings"]}
    only_b = _map(client, f"?station={county['b'].id}")
    assert [o["id"] for o in only_b["officers"]] == [county["b_officer"].id]
    assert [w["id"] for w in only_b["warnings"]] == [county["w"]["other"].id]


def test_officers_carry_the_age_of_their_position_and_badges(county, client, auth):
    auth.login("chief_a")
    officers = {o["id"]: o for o in _map(client)["officers"]}
    fresh, stale = officers[county["fresh"].id], officers[county["stale"].id]
    assert (fresh["fresh"], fresh["age_s"]) == (True, 120)
    assert (stale["fresh"], stale["age_s"]) == (False, 2400)
    # Two 杨强 told apart by their badge numbers.
    assert fresh["title"] == "杨强（警号 031207）" and stale["title"] == "杨强（警号 046610）"
    assert "位置更新于 2 分钟前" in " ".join(fresh["lines"])
    assert "已过时" in " ".join(stale["lines"])
    assert "在办预警：1 起" in fresh["lines"]


def test_warnings_are_coloured_by_lateness_and_counted_when_unplaced(county, client, auth):
    auth.login("chief_a")
    data = _map(client)
    by_id = {w["id"]: w for w in data["warnings"]}
    late, due = by_id[county["w"]["late"].id], by_id[county["w"]["due"].id]
    assert (late["lateness"], late["unassigned"]) == ("late", False)
    assert (due["lateness"], due["unassigned"]) == ("due", True)
    assert late["url"] == f"/board/warnings/{late['id']}"
    assert "民警：杨强（警号 031207）" in late["lines"]
    assert data["notes"] == ["值班但无位置：1 人", "无位置的在办预警：1 起"]


def test_map_carries_no_personal_data_of_residents(county, client, auth):
    auth.login("root")
    text = client.get("/board/map.json").get_data(as_text=True)
    w = county["w"]["late"]
    for secret in (w.person_name, w.person_phone, "13800138000"):
        assert secret not in text
    assert "phone" not in json.dumps(_map(client))


def test_the_warning_page_map_shows_its_closed_warning(county, client, auth):
    auth.login("chief_a")
    closed = county["w"]["closed"]
    data = _map(client, f"?focus={closed.id}")
    focus = [w for w in data["warnings"] if w["focus"]]
    assert [w["id"] for w in focus] == [closed.id]
    assert "已办结" in focus[0]["lines"][0]


def test_map_follows_the_board_filters(county, client, auth):
    auth.login("chief_a")
    data = _map(client, "?status=unassigned")
    assert [w["id"] for w in data["warnings"]] == [county["w"]["due"].id]


@pytest.mark.parametrize(
    "query",
    [
        "?station=99999999999999999999999",
        "?focus=-1",
        "?focus=%00",
        "?station=%EF%BC%91",  # a full-width digit one
        "?status=%00&fraud_type=x&officer=1e9",
        "?focus=2147483648",
    ],
)
def test_hostile_map_parameters_are_never_an_error(county, client, auth, query):
    auth.login("root")
    assert client.get(f"/board/map.json{query}").status_code == 200


def test_tile_presets_and_settings():
    assert tiles.source({}) is None
    assert tiles.source({"MAP_TILES": "amap"}).crs == "gcj02"
    assert tiles.source({"MAP_TILES": "osm"}).crs == "wgs84"
    assert tiles.source({"MAP_TILES": "tianditu"}) is None  # needs its key
    tdt = tiles.source({"MAP_TILES": "tianditu", "MAP_KEY": "k123"})
    assert "tk=k123" in tdt.url and "cva" in tdt.overlay_url and tdt.crs == "wgs84"
    custom = {
        "MAP_TILE_URL": "http://127.0.0.1:8123/{z}/{x}/{y}.png",
        "MAP_CRS": "gcj02",
        "MAP_ATTRIBUTION": "local",
    }
    assert tiles.source(custom).as_dict()["crs"] == "gcj02"
    for bad in (
        {"MAP_TILE_URL": "javascript:alert(1)//{z}{x}{y}"},
        {"MAP_TILE_URL": "https://tiles.example/{z}/{x}.png"},
        {"MAP_TILE_URL": "https://{s}.tiles.example/{z}/{x}/{y}.png"},  # {s} without subdomains
        {"MAP_TILE_URL": "https://tiles.example/{z}/{x}/{y}.png", "MAP_CRS": "bd09"},
        {"MAP_TILES": "nonsense"},
    ):
        assert tiles.source(bad) is None, bad


def test_csp_admits_the_tile_servers_and_only_them(app, client):
    assert "img-src 'self' data:;" in client.get("/login").headers["Content-Security-Policy"]
    app.config.update(MAP_TILES="amap")
    csp = client.get("/login").headers["Content-Security-Policy"]
    img = re.search(r"img-src ([^;]*);", csp).group(1).split()
    assert img == ["'self'", "data:"] + [f"https://webrd0{n}.is.autonavi.com" for n in "1234"]
    app.config.update(MAP_TILES="", MAP_TILE_URL="http://127.0.0.1:9/{z}/{x}/{y}.png")
    assert (
        "img-src 'self' data: http://127.0.0.1:9;"
        in client.get("/login").headers["Content-Security-Policy"]
    )


def test_board_shows_who_holds_the_offer_and_the_time_left(county, client, auth, fake_clock):
    a = county["a"]
    w = county["w"]["due"]
    offer = dispatch.dispatch(w, fake_clock.now())
    assert offer is not None and offer.officer_id == county["fresh"].id
    db.session.commit()
    fake_clock.advance(30)
    auth.login("chief_a")
    html = client.get("/board/").get_data(as_text=True)
    row = html.split(f'<tr id="w{w.id}"')[1].split("</tr>")[0]
    left = a.ack_timeout_s - 30
    assert "已推送给 杨强（警号 031207）" in row
    as_the_officer_sees_it = f"剩余 {left // 60}:{left % 60:02d}"
    assert f'data-left-s="{left}">{as_the_officer_sees_it}<' in row
    fake_clock.advance(a.ack_timeout_s)  # the worker has not moved it on yet
    row = client.get("/board/").get_data(as_text=True).split(f'<tr id="w{w.id}"')[1]
    assert "已超时，正在转派" in row.split("</tr>")[0]


def test_wall_screen_counts_and_has_no_controls(county, client, auth):
    auth.login("chief_a")
    resp = client.get("/board/wall")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "<form" not in html and "<button" not in html and "<select" not in html
    assert 'class="topbar"' not in html
    assert 'sse-connect="/board/stream?last_id=' in html and 'data-url="/board/map.json' in html
    assert re.search(r"<strong>2</strong><span>无人接警</span>", html)
    assert re.search(r"<strong>1</strong><span>超时</span>", html)
    assert re.search(r"<strong>3</strong><span>值班</span>", html)  # fresh, stale, nowhere
    assert "西山派出所" not in html
    fragment = client.get("/board/wall", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_admin_wall_for_one_station(county, client, auth):
    auth.login("root")
    html = client.get(f"/board/wall?station={county['b'].id}").get_data(as_text=True)
    assert "西山派出所" in html and "东岭派出所" not in html
    assert f"wall-w{county['w']['other'].id}" in html
    assert f"wall-w{county['w']['late'].id}" not in html


@pytest.mark.parametrize(
    "path",
    [
        "/board/wall?station=99999999999999999999999",
        "/board/wall?station=%00",
        "/board/wall?station=-3",
        "/board/warnings/{id}/reassign?next=%00",
        "/board/warnings/{id}/reassign?next=javascript:alert(1)",
        "/board/warnings/{id}/reassign?next=" + "x" * 5000,
        "/board/?status=%00&officer=99999999999999999999&fraud_type=%F0%9F%92%A3",
    ],
)
def test_hostile_parameters_on_the_new_pages(county, client, auth, path):
    auth.login("root")
    resp = client.get(path.format(id=county["w"]["late"].id))
    assert resp.status_code == 200
    assert "javascript:" not in resp.get_data(as_text=True).split("picker-form")[-1][:2000]
