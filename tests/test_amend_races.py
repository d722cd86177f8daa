"""Two chiefs amend the same closed warning's outcome at once, on PostgreSQL.

Each run: a fresh resolved warning; two threads with a connection each wait on a barrier, then
amend as the chief's form does (commit, or roll back on a refusal), one saying a loss of 1,000
yuan, the other 2,000. Whatever the order: both amendments are recorded, and the outcome row
says what the later of the two `outcome_amended` events says (the timeline and the figures
never disagree). Lanes of thread pairs as in tests/test_races.py.
"""

import os
from decimal import Decimal

import pytest
import sqlalchemy as sa

from fieldapp import amendments, clock
from fieldapp.extensions import db
from fieldapp.models import Event, Outcome, User, Warning
from tests.test_races import RUNS, _insert, race_two_sides, two_person_scenes

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get("FIELDAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL"),
]
LOSSES = (Decimal("1000.00"), Decimal("2000.00"))


def _scenes(n: int) -> list[tuple[int, int, int]]:
    """`n` (warning, chief A, chief B): each warning resolved as persuaded."""
    scenes = two_person_scenes(n, "chief", "resolved")
    _insert(
        Outcome,
        [{"warning_id": w, "outcome": "persuaded", "recorded_by_id": a} for w, a, _b in scenes],
    )
    db.session.commit()
    return scenes


def _amend(warning_id: int, chief_id: int, loss: Decimal):
    return lambda _scene: amendments.amend_outcome(
        db.session.get(Warning, warning_id),
        db.session.get(User, chief_id),
        clock.now(),
        defrauded_after=True,
        later_loss_amount=loss,
    )


def test_two_concurrent_amendments_leave_the_outcome_the_last_event_says(app):
    assert db.engine.dialect.name == "postgresql"
    scenes = _scenes(RUNS)
    out = race_two_sides(
        app, scenes, lambda scene, side: _amend(scene[0], scene[1 + side], LOSSES[side])
    )
    db.session.expire_all()
    ids = [s[0] for s in scenes]
    last_event: dict[int, Event] = {}
    count: dict[int, int] = {}
    for event in db.session.scalars(
        sa.select(Event)
        .where(Event.warning_id.in_(ids), Event.kind == "outcome_amended")
        .order_by(Event.id)
    ):
        last_event[event.warning_id] = event
        count[event.warning_id] = count.get(event.warning_id, 0) + 1
    rows = db.session.scalars(sa.select(Outcome).where(Outcome.warning_id.in_(ids)))
    outcomes = {o.warning_id: o for o in rows}
    bad = []
    for w_id, _a, _b in scenes:
        sides = [out.get((w_id, side), "no result") for side in (0, 1)]
        o = outcomes[w_id]
        said = last_event[w_id].data.get("later_loss_amount") if w_id in last_event else None
        if sides != ["applied", "applied"] or count.get(w_id) != 2:
            bad.append(f"warning {w_id}: {sides}, {count.get(w_id)} events")
        elif said is None or Decimal(str(said)) != o.later_loss_amount:
            bad.append(f"warning {w_id}: row says {o.later_loss_amount}, last event says {said}")
    print(f"\namendment races: {len(scenes)}, failed: {len(bad)}")
    assert not bad, bad[:5]
