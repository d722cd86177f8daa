"""Data retention: wipe the personal data of long-closed warnings, keep the figures.

What goes: the resident's name, phone, address, the suspect's account, and every free-text note
(warning, contact attempts, confirmations, outcome), since notes may name people. What stays:
statuses, times, fraud types, risk levels, amounts, outcomes, who worked the warning, and the
event log (which never holds personal data). Locations are coarsened to ~1 km so maps and
per-area figures still work without pointing at a home.
"""

from datetime import timedelta

import sqlalchemy as sa

from fieldapp import clock, events
from fieldapp.extensions import db
from fieldapp.models import Confirmation, ContactAttempt, Outcome, Warning


def _coarse(column):
    # PostgreSQL has round(numeric, int) only, hence the casts; two decimals is about 1 km.
    return sa.cast(sa.func.round(sa.cast(column, sa.Numeric(12, 6)), 2), sa.Float)


def anonymise_resolved(days: int, now=None) -> dict[str, int]:
    """Anonymise warnings resolved more than `days` days ago; idempotent; returns counts.

    Adds to the session; the caller commits.
    """
    now = now or clock.now()
    cutoff = now - timedelta(days=days)
    ids = list(
        db.session.scalars(
            sa.select(Warning.id).where(
                Warning.status == "resolved",
                Warning.resolved_at < cutoff,
                Warning.anonymised_at.is_(None),
            )
        )
    )
    counts = {"warnings": len(ids), "attempts": 0, "confirmations": 0, "outcomes": 0}
    if not ids:
        return counts
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        db.session.execute(
            sa.update(Warning)
            .where(Warning.id.in_(chunk))
            .values(
                person_name="",
                person_phone="",
                address=None,
                suspect_account=None,
                note=None,
                lat=_coarse(Warning.lat),
                lon=_coarse(Warning.lon),
                accuracy_m=None,
                anonymised_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        counts["attempts"] += db.session.execute(
            sa.update(ContactAttempt)
            .where(ContactAttempt.warning_id.in_(chunk), ContactAttempt.note.is_not(None))
            .values(note=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        attempt_ids = sa.select(ContactAttempt.id).where(ContactAttempt.warning_id.in_(chunk))
        counts["confirmations"] += db.session.execute(
            sa.update(Confirmation)
            .where(Confirmation.attempt_id.in_(attempt_ids), Confirmation.note.is_not(None))
            .values(note=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        counts["outcomes"] += db.session.execute(
            sa.update(Outcome)
            .where(Outcome.warning_id.in_(chunk), Outcome.note.is_not(None))
            .values(note=None)
            .execution_options(synchronize_session=False)
        ).rowcount
    events.record("retention_run", days=days, warnings=counts["warnings"])
    db.session.expire_all()
    return counts
