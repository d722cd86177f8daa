"""Two officers accept the same high-risk warning's parallel offers at once, on PostgreSQL.

Each run: a fresh warning offered to A and B together (issue 12.8). Two threads with a
connection each wait on a barrier, then accept as sync does (commit, or roll back on a
refusal). Whatever the order: exactly one owner, one accepted offer, the other closed as
taken, one `accepted` event and one refusal saying `taken`. Runs are spread over lanes of
thread pairs (tests/test_races.py helpers) to stay short.
"""

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, User, Warning
from tests.test_races import RUNS, _insert, race_two_sides, two_person_scenes

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get("FIELDAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL"),
]


def _scenes(n: int) -> list[tuple[int, int, int]]:
    """`n` (warning, officer A, officer B) with both offers pending."""
    now = clock.now()
    scenes = two_person_scenes(n, "officer", "offered", duty_status="on_duty")
    _insert(
        Offer,
        [
            {
                "warning_id": w,
                "officer_id": officer,
                "rank": k + 1,
                "status": "pending",
                "created_at": now,
                "expires_at": now + timedelta(seconds=90),
            }
            for w, *officers in scenes
            for k, officer in enumerate(officers)
        ],
    )
    db.session.commit()
    return scenes


def _accept(warning_id: int, user_id: int):
    return lambda _scene: dispatch.accept(
        db.session.get(Warning, warning_id), db.session.get(User, user_id)
    )


def test_two_concurrent_accepts_of_a_parallel_offer_leave_exactly_one_owner(app):
    scenes = _scenes(RUNS)
    out = race_two_sides(app, scenes, lambda scene, side: _accept(scene[0], scene[1 + side]))
    db.session.expire_all()
    ids = [s[0] for s in scenes]
    offers: dict[int, list[Offer]] = {}
    for o in db.session.scalars(sa.select(Offer).where(Offer.warning_id.in_(ids))):
        offers.setdefault(o.warning_id, []).append(o)
    accepted_events = dict(
        db.session.execute(
            sa.select(Event.warning_id, sa.func.count())
            .where(Event.warning_id.in_(ids), Event.kind == "accepted")
            .group_by(Event.warning_id)
        ).all()
    )
    bad = []
    for w_id, a_id, b_id in scenes:
        w = db.session.get(Warning, w_id)
        sides = sorted(out.get((w_id, side), "no result") for side in (0, 1))
        by_status = sorted(o.status for o in offers[w_id])
        applied = [side for side in (0, 1) if out.get((w_id, side)) == "applied"]
        accepted = [o for o in offers[w_id] if o.status == "accepted"]
        if (
            sides != ["applied", "refused:taken"]
            or w.status != "accepted"
            or w.owner_id != (a_id, b_id)[applied[0]]
            or by_status != ["accepted", "taken"]
            or accepted[0].officer_id != w.owner_id
            or accepted_events.get(w_id) != 1
        ):
            bad.append((w_id, sides, w.status, w.owner_id, by_status, accepted_events.get(w_id)))
    assert not bad, bad[:5]
