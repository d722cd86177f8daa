"""Intake API tokens: made once, stored only as a hash, revocable."""

import hashlib
import hmac
import secrets

import sqlalchemy as sa

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


def find_token(plaintext: str) -> IntakeToken | None:
    """The live token matching `plaintext`, or None (unknown or revoked)."""
    if not plaintext or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    row = db.session.scalar(sa.select(IntakeToken).where(IntakeToken.token_hash == digest))
    if row is None or row.revoked_at is not None:
        return None
    # The lookup is by hash already; compare again in constant time for good measure.
    return row if hmac.compare_digest(row.token_hash, digest) else None
