"""Intake API tokens: made once, stored only as a hash, revocable."""

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from fieldapp import clock, events
from fieldapp.extensions import db
from fieldapp.models import IntakeToken, Station

PREFIX = "fa_"


def hash_token(token: str) -> str:
    """SHA-256 hex of a token (tokens are long random strings, so no salt or stretching needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, station: Station | None = None, webhook_url: str | None = None):
    """Make a token; returns (row, plaintext). The plaintext is never stored."""
    plaintext = PREFIX + secrets.token_urlsafe(32)
    row = IntakeToken(
        name=name,
        token_hash=hash_token(plaintext),
        station_id=station.id if station else None,
        webhook_url=webhook_url,
        webhook_secret=secrets.token_urlsafe(32) if webhook_url else None,
    )
    db.session.add(row)
    return row, plaintext


# Built once: every intake request runs it. The station comes along, intake needs it.
_BY_HASH = (
    sa.select(IntakeToken)
    .options(joinedload(IntakeToken.station))
    .where(IntakeToken.token_hash == sa.bindparam("digest"))
)


def find_token(plaintext: str) -> IntakeToken | None:
    """The live token matching `plaintext`, or None (unknown or revoked)."""
    if not plaintext or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    row = db.session.scalar(_BY_HASH, {"digest": digest})
    if row is None or row.revoked_at is not None:
        return None
    # The lookup is by hash already; compare again in constant time for good measure.
    return row if hmac.compare_digest(row.token_hash, digest) else None


def revoke(*, name: str | None = None, token_id: int | None = None) -> list[IntakeToken]:
    """Revoke the live tokens called `name` (or the one with `token_id`); returns them.

    A revoked token answers 401 from the next request on; the row stays for the audit trail.
    """
    query = sa.select(IntakeToken).where(IntakeToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(IntakeToken.id == token_id)
    elif name is not None:
        query = query.where(IntakeToken.name == name)
    else:
        raise ValueError("name or token_id is required")
    rows = list(db.session.scalars(query))
    now = clock.now()
    for row in rows:
        row.revoked_at = now
        events.record("token_revoked", station_id=row.station_id, token_id=row.id)
    return rows
