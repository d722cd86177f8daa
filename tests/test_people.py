"""People management (#12 item 5): who may manage whom, each change in the UI and the CLI."""

import json
import re

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch, personnel
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, User
from tests import factories

LAT, LON = 27.8170, 114.9230
OFFICE = "10.1.1.5"


@pytest.fixture(autouse=True)
def isolated_clients(app):
    from tests.conftest import IsolatedClient

    app.test_client_class = IsolatedClient


@pytest.fixture
def world(make, fake_clock):
    a = make.station("A", lat=LAT, lon=LON)
    b = make.station("B", lat=28.2, lon=115.3)
    people = {
        "officer_a": make.user(a, "officer", "officer_a", on_duty=True, lat=LAT, lon=LON),
        "officer_a2": make.user(a, "officer", "officer_a2", on_duty=True, lat=LAT + 0.02, lon=LON),
        "aux_a": make.user(a, "auxiliary", "aux_a"),
        "chief_a": make.user(a, "chief", "chief_a"),
        "chief_a2": make.user(a, "chief", "chief_a2"),
        "officer_b": make.user(b, "officer", "officer_b"),
        "chief_b": make.user(b, "chief", "chief_b"),
        "admin": make.user(a, "admin", "root"),
    }
    db.session.commit()
    return {**people, "station_a": a, "station_b": b}


def csrf(client, path="/login") -> str:
    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def log_in(client, username, password=factories.PASSWORD, addr=OFFICE):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf(client)},
        environ_base={"REMOTE_ADDR": addr},
    )


def as_user(app, username):
    client = app.test_client()
    assert log_in(client, username).status_code == 302
    return client


def post(client, path, **data):
    return client.post(path, data={**data, "csrf_token": csrf(client, "/people/")})


def events(kind=None):
    query = sa.select(Event).order_by(Event.id)
    if kind:
        query = query.where(Event.kind == kind)
    return db.session.scalars(query).all()


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        ("chief_a", "officer_a", True),
        ("chief_a", "aux_a", True),
        ("chief_a", "chief_a2", False),  # chiefs and admins are for an admin
        ("chief_a", "admin", False),
        ("chief_a", "officer_b", False),  # another station
        ("chief_a", "chief_a", False),  # not oneself
        ("admin", "officer_b", True),
        ("admin", "chief_a", True),
        ("admin", "admin", False),
        ("officer_a", "aux_a", False),
        ("aux_a", "officer_a", False),
    ],
)
def test_who_may_manage_whom(world, actor, target, allowed):
    assert personnel.can_manage(world[actor], world[target]) is allowed


def test_chiefs_may_give_field_roles_only_admins_any(world):
    assert personnel.assignable_roles(world["chief_a"], world["officer_a"]) == (
        "officer",
        "auxiliary",
    )
    assert personnel.assignable_roles(world["admin"], world["officer_a"]) == (
        "officer",
        "auxiliary",
        "chief",
        "admin",
    )
    assert personnel.assignable_roles(world["chief_a"], world["chief_a2"]) == ()


def test_a_chief_lists_their_station_an_admin_everyone(world, app):
    html = as_user(app, "chief_a").get("/people/").get_data(as_text=True)
    assert f'id="u{world["officer_a"].id}"' in html
    assert f'id="u{world["officer_b"].id}"' not in html
    admin = as_user(app, "root")
    html = admin.get("/people/").get_data(as_text=True)
    assert f'id="u{world["officer_b"].id}"' in html
    only_b = admin.get(f"/people/?station={world['station_b'].id}").get_data(as_text=True)
    assert f'id="u{world["officer_b"].id}"' in only_b
    assert f'id="u{world["officer_a"].id}"' not in only_b
    found = admin.get("/people/?q=OFFICER_A2").get_data(as_text=True)
    assert f'id="u{world["officer_a2"].id}"' in found
    assert f'id="u{world["officer_a"].id}"' not in found


@pytest.mark.parametrize(
    "query",
    [
        "q=%00",
        "q=%25",
        "q=_",
        "q=" + "x" * 5000,
        "station=%C2%B2",
        "station=99999999999999999999",
        "station=-1",
        "q=%E2%80%AE",
    ],
)
def test_hostile_list_parameters_never_500(world, app, query):
    resp = as_user(app, "root").get(f"/people/?{query}")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"


def test_other_stations_people_are_404_and_officers_403(world, app):
    path = f"/people/{world['officer_a'].id}"
    assert as_user(app, "chief_b").get(path).status_code == 404
    assert as_user(app, "officer_a2").get(path).status_code == 403
    chief = as_user(app, "chief_a")
    colleague = chief.get(f"/people/{world['chief_a2'].id}")
    assert colleague.status_code == 200 and "只有管理员可以修改此账号" in colleague.get_data(
        as_text=True
    )
    assert post(chief, f"/people/{world['chief_a2'].id}/unlock").status_code == 403


def test_a_throttled_officer_is_unlocked_by_the_chief(world, app):
    officer = app.test_client()
    for _ in range(6):
        log_in(officer, "officer_a", "wrong-password-1")
    assert log_in(officer, "officer_a").status_code == 429
    chief = as_user(app, "chief_a")
    page = chief.get(f"/people/{world['officer_a'].id}").get_data(as_text=True)
    assert "暂停登录至" in page
    listing = chief.get("/people/").get_data(as_text=True)
    assert "暂停登录至" in listing
    resp = post(chief, f"/people/{world['officer_a'].id}/unlock")
    assert resp.status_code == 302
    assert "已清除登录失败记录" in chief.get(resp.headers["Location"]).get_data(as_text=True)
    assert log_in(officer, "officer_a").status_code == 302
    [event] = events("user_unlocked")
    assert event.actor_id == world["chief_a"].id
    assert event.data["user_id"] == world["officer_a"].id and event.data["buckets"] >= 2


def test_reset_confirms_then_shows_a_one_time_password_once(world, app):
    chief = as_user(app, "chief_a")
    target = world["officer_a"]
    path = f"/people/{target.id}/reset-password"
    confirm = chief.get(path)
    assert confirm.status_code == 200 and "重置" in confirm.get_data(as_text=True)
    version = target.session_version
    resp = post(chief, path, confirm="yes", version=version)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    one_time = re.search(r'<output id="otp">([^<]+)</output>', html).group(1)
    assert "只显示这一次" in html
    # A double tap sends the same page twice: the second changes nothing.
    again = post(chief, path, confirm="yes", version=version)
    assert again.status_code == 302
    assert "刚刚被修改过" in chief.get(again.headers["Location"]).get_data(as_text=True)
    assert len(events("password_reset")) == 1
    officer = app.test_client()
    assert log_in(officer, "officer_a", one_time).headers["Location"].endswith("/account/password")


def test_reset_without_its_confirmation_changes_nothing(world, app):
    chief = as_user(app, "chief_a")
    before = world["officer_a"].password_hash
    resp = post(chief, f"/people/{world['officer_a'].id}/reset-password")
    assert resp.status_code == 400
    assert db.session.get(User, world["officer_a"].id).password_hash == before
    assert events("password_reset") == []


def test_deactivation_ends_sessions_and_dispatch(world, app, make):
    target, next_one = world["officer_a"], world["officer_a2"]
    officer = as_user(app, "officer_a")
    now = clock.now()
    owned = make.warning(world["station_a"], lat=LAT, lon=LON)
    dispatch.dispatch(owned, now)
    dispatch.accept(owned, target, now)
    pending = make.warning(world["station_a"], lat=LAT, lon=LON)
    offer = dispatch.dispatch(pending, now)
    assert offer.officer_id == target.id
    db.session.commit()
    chief = as_user(app, "chief_a")
    confirm = chief.get(f"/people/{target.id}/deactivate").get_data(as_text=True)
    assert "1 个派单将立即转给下一位民警" in confirm and f"#{owned.id}" in confirm
    resp = post(
        chief, f"/people/{target.id}/deactivate", confirm="yes", version=target.session_version
    )
    assert resp.status_code == 302
    shown = chief.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已停用" in shown and "1 条未结预警" in shown
    # Logged out, and no way back in.
    assert officer.get("/field/").status_code == 302
    refused = log_in(app.test_client(), "officer_a")
    assert refused.status_code == 401 and "已停用" in refused.get_data(as_text=True)
    # Their offer moved on to the next officer; a new warning never goes to them.
    db.session.expire_all()
    assert db.session.get(Offer, offer.id).status == "expired"
    moved = db.session.scalars(
        sa.select(Offer).where(Offer.warning_id == pending.id, Offer.status == "pending")
    ).one()
    assert moved.officer_id == next_one.id
    fresh = make.warning(world["station_a"], lat=LAT, lon=LON)
    assert dispatch.dispatch(fresh, clock.now()).officer_id == next_one.id
    assert db.session.get(User, target.id).duty_status == "off_duty"
    [event] = events("user_deactivated")
    assert event.data == {"user_id": target.id, "offers_withdrawn": 1}
    # Reactivated, they log in again.
    assert post(chief, f"/people/{target.id}/reactivate").status_code == 302
    assert log_in(app.test_client(), "officer_a").status_code == 302


def test_role_changes_within_what_the_actor_may_give(world, app, make):
    target = world["officer_a"]
    offer = dispatch.dispatch(make.warning(world["station_a"], lat=LAT, lon=LON), clock.now())
    assert offer.officer_id == target.id
    db.session.commit()
    chief = as_user(app, "chief_a")
    path = f"/people/{target.id}/role"
    # A chief cannot make a chief: the choice is not offered and the post changes nothing.
    post(chief, path, role="chief", seen_role="officer")
    assert db.session.get(User, target.id).role == "officer"
    # Officer to auxiliary at a station whose auxiliaries take no offers: the offer moves on.
    assert post(chief, path, role="auxiliary", seen_role="officer").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, target.id).role == "auxiliary"
    assert db.session.get(Offer, offer.id).status == "expired"
    # A form built on the old role changes nothing.
    resp = post(chief, path, role="officer", seen_role="chief")
    assert "刚刚被修改过" in chief.get(resp.headers["Location"]).get_data(as_text=True)
    assert db.session.get(User, target.id).role == "auxiliary"
    admin = as_user(app, "root")
    assert post(admin, path, role="chief", seen_role="auxiliary").status_code == 302
    assert db.session.get(User, target.id).role == "chief"
    kinds = [(e.data["from_role"], e.data["to_role"]) for e in events("role_changed")]
    assert kinds == [("officer", "auxiliary"), ("auxiliary", "chief")]


def test_the_last_admin_stays(world, runner):
    result = runner.invoke(args=["deactivate-user", "--username", "root"])
    assert result.exit_code != 0 and "last active admin" in result.output
    result = runner.invoke(args=["set-role", "--username", "root", "--role", "chief"])
    assert result.exit_code != 0 and "last active admin" in result.output
    assert (
        runner.invoke(args=["set-role", "--username", "chief_a", "--role", "admin"]).exit_code == 0
    )
    assert runner.invoke(args=["set-role", "--username", "root", "--role", "chief"]).exit_code == 0


def test_cli_people_commands(world, runner, app):
    for _ in range(6):
        log_in(app.test_client(), "officer_a", "wrong-password-1")
    listing = runner.invoke(args=["list-users", "--station", "A"]).output
    assert re.search(r"officer_a\tofficer\tA\tthrottled-until=", listing)
    assert "officer_b" not in listing
    assert "unlocked" in runner.invoke(args=["unlock-user", "--username", "officer_a"]).output
    assert log_in(app.test_client(), "officer_a").status_code == 302
    assert runner.invoke(args=["deactivate-user", "--username", "officer_a"]).exit_code == 0
    again = runner.invoke(args=["deactivate-user", "--username", "officer_a"])
    assert again.exit_code != 0 and "already deactivated" in again.output
    assert "inactive" in runner.invoke(args=["list-users"]).output
    assert runner.invoke(args=["reactivate-user", "--username", "officer_a"]).exit_code == 0
    assert (
        runner.invoke(args=["set-role", "--username", "officer_a", "--role", "auxiliary"]).exit_code
        == 0
    )
    missing = runner.invoke(args=["unlock-user", "--username", "nobody"])
    assert missing.exit_code != 0 and "no user" in missing.output
    cli_events = [e for e in events() if e.kind.startswith(("user_", "role_"))]
    assert cli_events and all(e.actor_id is None for e in cli_events)


def test_people_events_carry_no_personal_data(world, app, runner):
    chief = as_user(app, "chief_a")
    target = world["officer_a"]
    post(chief, f"/people/{target.id}/unlock")
    post(
        chief, f"/people/{target.id}/reset-password", confirm="yes", version=target.session_version
    )
    post(chief, f"/people/{target.id}/role", role="auxiliary", seen_role="officer")
    post(
        chief, f"/people/{target.id}/deactivate", confirm="yes", version=target.session_version + 1
    )
    post(chief, f"/people/{target.id}/reactivate")
    kinds = [e.kind for e in events() if e.kind not in ("login", "login_failed")]
    assert kinds == [
        "user_unlocked",
        "password_reset",
        "role_changed",
        "user_deactivated",
        "user_reactivated",
    ]
    for event in events():
        text = json.dumps(event.data, ensure_ascii=False)
        for person in world.values():
            if isinstance(person, User):
                assert person.username not in text and person.display_name not in text
        assert all(isinstance(v, int | str | bool | None) for v in event.data.values())
