"""The persuasion aid per fraud type: an admin's edits, checked and recorded."""

from flask_babel import gettext as _

from fieldapp import clock, events
from fieldapp.extensions import db
from fieldapp.models import FRAUD_TYPES, TalkingPoints, User
from fieldapp.validation import has_controls, strip_bidi

MAX_CHARS = 2000


def all_rows() -> dict[str, TalkingPoints]:
    """Every fraud type's stored talking points, by fraud type."""
    return {r.fraud_type: r for r in db.session.scalars(db.select(TalkingPoints))}


def save(rows: dict[str, TalkingPoints], texts: dict[str, tuple[str, str]], actor: User) -> dict:
    """Apply (zh, en) texts per fraud type; the errors per fraud type, nothing kept if any."""
    errors: dict[str, str] = {}
    for fraud_type in FRAUD_TYPES:
        zh, en = (strip_bidi(t or "").strip() for t in texts.get(fraud_type, ("", "")))
        if len(zh) > MAX_CHARS or len(en) > MAX_CHARS:
            errors[fraud_type] = _("At most %(n)d characters.", n=MAX_CHARS)
            continue
        if has_controls(zh) or has_controls(en):
            errors[fraud_type] = _("Must not contain control characters.")
            continue
        if not zh and not en:
            continue
        row = rows.get(fraud_type)
        if row is None:
            row = rows[fraud_type] = TalkingPoints(fraud_type=fraud_type)
            db.session.add(row)
        if (row.text_zh, row.text_en) != (zh, en):
            row.text_zh, row.text_en = zh, en
            row.updated_at = clock.now()
            row.updated_by_id = actor.id
            events.record("talking_points_edited", actor=actor, fraud_type=fraud_type)
    if errors:
        db.session.rollback()
    else:
        db.session.commit()
    return errors
