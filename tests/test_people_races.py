"""Pairs of people-management changes racing on PostgreSQL, 100 runs each: compare-and-set
makes exactly the right ones win and never leaves the county without an admin."""

import os
import threading

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch, personnel, refusals
from fieldapp.auth import login, sessions
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, User, UserSession, Warning

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get("FIELDAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL"),
]
RUNS = 100
LAT, LON = 27.8170, 114.9230


def race(app, first, second) -> list:
    """Run `first` and `second` (each given a fresh session) at once; their results in order."""
    barrier = threading.Barrier(2)
    results = [None, None]

    def run(i, change):
        with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.1.5"}):
            try:
                barrier.wait()
                results[i] = change()
                db.session.commit()
            except refusals.Refusal as error:
                db.session.rollback()
                results[i] = error.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db.session.expire_all()
    return results


def get(user_id: int) -> User:
    return db.session.get(User, user_id)


def count(kind: str, user_id: int) -> int:
    return sum(
        1
        for e in db.session.scalars(sa.select(Event).where(Event.kind == kind))
        if e.data.get("user_id") == user_id
    )


@pytest.fixture
def world(make):
    station = make.station("A", lat=LAT, lon=LON)
    chief = make.user(station, "chief", "chief_a")
    admin = make.user(station, "admin", "root")
    db.session.commit()
    return {"station": station, "chief": chief.id, "admin": admin.id}


def new_officer(make, world, n, **kw):
    user = make.user(world["station"], "officer", f"o{n}", **kw)
    db.session.commit()
    return user.id


def test_two_resets_of_one_page_reset_once(app, make, world):
    for n in range(RUNS):
        uid = new_officer(make, world, n)
        seen = get(uid).session_version

        def reset(uid=uid, seen=seen):
            return personnel.reset_password(get(world["chief"]), get(uid), seen)

        results = race(app, reset, reset)
        assert sorted(r == "changed" for r in results) == [False, True], results
        assert count("password_reset", uid) == 1


def test_two_deactivations_count_once(app, make, world):
    for n in range(RUNS):
        uid = new_officer(make, world, n)

        def deactivate(uid=uid):
            return personnel.deactivate(get(world["chief"]), get(uid))

        results = race(app, deactivate, deactivate)
        assert sorted(r == "already_inactive" for r in results) == [False, True], results
        assert count("user_deactivated", uid) == 1 and not get(uid).active


def test_deactivate_racing_reactivate_agrees_with_its_events(app, make, world):
    for n in range(RUNS):
        uid = new_officer(make, world, n)
        results = race(
            app,
            lambda uid=uid: personnel.deactivate(get(world["chief"]), get(uid)),
            lambda uid=uid: personnel.reactivate(get(world["chief"]), get(uid)),
        )
        assert results[0] != "already_inactive"
        reactivated = results[1] != "already_active"
        assert get(uid).active is reactivated
        assert count("user_reactivated", uid) == int(reactivated)


def test_two_role_changes_from_one_form_apply_once(app, make, world):
    for n in range(RUNS):
        uid = new_officer(make, world, n)
        results = race(
            app,
            lambda uid=uid: personnel.change_role(
                get(world["admin"]), get(uid), "auxiliary", "officer"
            ),
            lambda uid=uid: personnel.change_role(
                get(world["admin"]), get(uid), "chief", "officer"
            ),
        )
        assert sorted(r == "changed" for r in results) == [False, True], results
        won = "auxiliary" if results[0] is None else "chief"
        assert get(uid).role == won and count("role_changed", uid) == 1


def test_two_admins_demoting_each_other_leave_one(app, make, world):
    station = world["station"]
    for n in range(RUNS):
        db.session.execute(sa.update(User).where(User.role == "admin").values(role="chief"))
        a = make.user(station, "admin", f"adm{n}a")
        b = make.user(station, "admin", f"adm{n}b")
        db.session.commit()
        results = race(
            app,
            lambda a=a.id, b=b.id: personnel.change_role(get(a), get(b), "officer", "admin"),
            lambda a=a.id, b=b.id: personnel.change_role(get(b), get(a), "officer", "admin"),
        )
        admins = db.session.scalar(
            sa.select(sa.func.count()).where(User.role == "admin", User.active.is_(True))
        )
        assert admins == 1, results
        # The loser either waited for the winner's lock and found itself the last admin, or
        # started after the winner committed and was no admin any more.
        assert results.count(None) == 1 and set(results) - {None} <= {"last_admin", "forbidden"}


def test_deactivation_racing_a_login_leaves_no_live_session(app, make, world):
    for n in range(RUNS):
        uid = new_officer(make, world, n)

        def log_in(uid=uid):
            user = login.authenticate(get(uid).username, "correct-horse-42", "10.1.1.5")
            sessions.start_session(user)
            return user.session_version

        results = race(
            app, log_in, lambda uid=uid: personnel.deactivate(get(world["chief"]), get(uid))
        )
        user = get(uid)
        assert not user.active
        live = db.session.scalars(
            sa.select(UserSession).where(UserSession.user_id == uid, UserSession.ended_at.is_(None))
        ).all()
        # A session opened before the deactivation committed carries the old version, and the
        # loader also wants the account active: either way no request gets through with it.
        if isinstance(results[0], int):
            assert live == [] or results[0] != user.session_version


def test_deactivation_racing_an_accept_ends_one_way(app, make, world):
    station = world["station"]
    for n in range(RUNS):
        uid = new_officer(make, world, n, on_duty=True, lat=LAT, lon=LON)
        warning = make.warning(station, lat=LAT, lon=LON)
        offer = dispatch.dispatch(warning, clock.now())
        db.session.commit()
        assert offer.officer_id == uid
        wid, oid = warning.id, offer.id
        results = race(
            app,
            lambda uid=uid, wid=wid: dispatch.accept(db.session.get(Warning, wid), get(uid)),
            lambda uid=uid: personnel.deactivate(get(world["chief"]), get(uid)),
        )
        status = db.session.get(Offer, oid).status
        assert status in ("accepted", "expired"), (results, status)
        accepted = status == "accepted"
        assert (db.session.get(Warning, wid).owner_id == uid) is accepted
        assert count("user_deactivated", uid) == 1
        event = db.session.scalars(
            sa.select(Event).where(Event.kind == "user_deactivated").order_by(Event.id.desc())
        ).first()
        assert event.data["offers_withdrawn"] == int(not accepted)
