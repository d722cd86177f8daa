"""The changes outside the warning's own state machine, raced on PostgreSQL: a follow-up marked
done from two phones at once, going on duty from two tabs, and on and off duty at once.

Each uses the pairwise race's runner (tests/test_races.race_two_sides): per run a fresh scene,
two threads with a connection each released by a barrier, committing as the views do.
"""

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import clock, duty, fieldwork
from fieldapp.extensions import db
from fieldapp.models import Event, Outcome, User, Warning
from tests.test_races import RUNS, _insert, race_two_sides, two_person_scenes

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get("FIELDAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL"),
]


def _events(kind: str, **where) -> list[Event]:
    query = sa.select(Event).where(Event.kind == kind).order_by(Event.id)
    for column, values in where.items():
        query = query.where(getattr(Event, column).in_(values))
    return list(db.session.scalars(query))


def test_a_follow_up_marked_done_on_two_phones_at_once_is_done_once(app):
    assert db.engine.dialect.name == "postgresql"
    scenes = two_person_scenes(RUNS, "officer", "resolved")
    due = clock.now() + timedelta(days=2)
    _insert(
        Outcome,
        [
            {"warning_id": w, "outcome": "persuaded", "recorded_by_id": a, "follow_up_at": due}
            for w, a, _b in scenes
        ],
    )
    db.session.commit()

    def done(scene, _side):
        # The officer who recorded the outcome, from two phones.
        return lambda _s: fieldwork.complete_follow_up(
            db.session.get(Warning, scene[0]), db.session.get(User, scene[1])
        )

    out = race_two_sides(app, scenes, done)
    db.session.expire_all()
    ids = [w for w, _a, _b in scenes]
    events_by = {}
    for event in _events("follow_up_done", warning_id=ids):
        events_by.setdefault(event.warning_id, []).append(event)
    rows = {o.warning_id: o for o in db.session.scalars(sa.select(Outcome))}
    bad = []
    for w, _a, _b in scenes:
        sides = sorted(out.get((w, side), "no result") for side in (0, 1))
        if sides != ["applied", "refused:no_follow_up"]:
            bad.append(f"warning {w}: {sides}")
        elif len(events_by.get(w, [])) != 1 or rows[w].follow_up_done_at is None:
            bad.append(f"warning {w}: {len(events_by.get(w, []))} events")
    print(f"\nfollow-up races: {len(scenes)}, failed: {len(bad)}")
    assert not bad, bad[:5]


def test_going_on_duty_from_two_tabs_at_once_is_one_change(app):
    assert db.engine.dialect.name == "postgresql"
    scenes = two_person_scenes(RUNS, "officer", "received", duty_status="off_duty")
    db.session.commit()

    def on_duty(scene, _side):
        return lambda _s: duty.set_duty(db.session.get(User, scene[1]), "on_duty")

    out = race_two_sides(app, scenes, on_duty)
    db.session.expire_all()
    people = [a for _w, a, _b in scenes]
    changes = {}
    for event in _events("duty_changed", actor_id=people):
        changes[event.actor_id] = changes.get(event.actor_id, 0) + 1
    status = dict(
        db.session.execute(sa.select(User.id, User.duty_status).where(User.id.in_(people))).all()
    )
    bad = []
    for w, a, _b in scenes:
        sides = [out.get((w, side), "no result") for side in (0, 1)]
        if sides != ["applied", "applied"] or changes.get(a) != 1 or status[a] != "on_duty":
            bad.append(f"officer {a}: {sides}, {changes.get(a)} changes, {status[a]}")
    print(f"\non-duty races: {len(scenes)}, failed: {len(bad)}")
    assert not bad, bad[:5]


@pytest.mark.parametrize("start", ["off_duty", "on_duty"])
def test_on_and_off_duty_at_once_leave_what_the_last_change_says(app, start):
    """The officer's status is what their last duty_changed event says (the board and the
    dispatcher read the status; the timeline and the figures read the events)."""
    assert db.engine.dialect.name == "postgresql"
    scenes = two_person_scenes(RUNS, "officer", "received", duty_status=start)
    db.session.commit()
    wanted = ("on_duty", "off_duty")

    def set_duty(scene, side):
        return lambda _s: duty.set_duty(db.session.get(User, scene[1]), wanted[side])

    out = race_two_sides(app, scenes, set_duty)
    db.session.expire_all()
    people = [a for _w, a, _b in scenes]
    last = {}
    for event in _events("duty_changed", actor_id=people):
        last[event.actor_id] = event.data["status"]
    status = dict(
        db.session.execute(sa.select(User.id, User.duty_status).where(User.id.in_(people))).all()
    )
    bad = []
    for w, a, _b in scenes:
        sides = [out.get((w, side), "no result") for side in (0, 1)]
        if sides != ["applied", "applied"] or status[a] != last.get(a, start):
            bad.append(f"officer {a}: {sides}, status {status[a]}, last event {last.get(a)}")
    print(f"\non/off-duty races from {start}: {len(scenes)}, failed: {len(bad)}")
    assert not bad, bad[:5]
