"""The compare-and-set every change to a warning starts with (fieldapp/warning_lock.py)."""

import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import OPEN_STATUSES, Warning
from fieldapp.warning_lock import lock


def test_lock_reloads_what_another_transaction_committed(make):
    station = make.station()
    w = make.warning(station, status="accepted")
    db.session.commit()
    assert w.status == "accepted"  # loaded in this session
    with db.engine.begin() as other:  # a colleague's request, on its own connection
        other.execute(sa.update(Warning).where(Warning.id == w.id).values(status="resolved"))
    assert lock(w, OPEN_STATUSES) is False
    assert w.status == "resolved"  # the refusal can say why
    db.session.rollback()
    with db.engine.begin() as other:
        other.execute(sa.update(Warning).where(Warning.id == w.id).values(status="in_contact"))
    assert lock(w, OPEN_STATUSES) is True and w.status == "in_contact"
    db.session.rollback()
    assert lock(w, None) is True  # any status: confirmations after the outcome


def test_lock_changes_nothing_visible(make, fake_clock):
    station = make.station()
    w = make.warning(station, status="offered")
    db.session.commit()
    before = (w.status, w.last_action_at, w.owner_id)
    assert lock(w, ("offered",))
    db.session.commit()
    db.session.expire_all()
    assert (w.status, w.last_action_at, w.owner_id) == before
