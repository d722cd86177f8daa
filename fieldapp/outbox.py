"""Queueing background work as outbox rows, inside the caller's transaction."""

from datetime import datetime

from fieldapp import clock
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage


def enqueue(kind: str, payload: dict, due_at: datetime | None = None) -> OutboxMessage:
    """Add work for the worker; it exists only if the surrounding transaction commits."""
    # Lease columns set on every row, even empty: rows with the same columns are inserted in
    # one statement, and a new offer's push row is leased at once (express.py).
    now = clock.now()
    message = OutboxMessage(
        kind=kind,
        payload=payload,
        due_at=due_at or now,
        attempts=0,
        locked_by=None,
        locked_until=None,
    )
    db.session.add(message)
    if kind == "push" and message.due_at <= now:
        # A request sends these itself once its response is out (express.py).
        db.session.info.setdefault(DUE_NOW, []).append(message)
    return message


# session.info key: the push rows this session queued for now.
DUE_NOW = "outbox_pushes_due_now"


class RetryLater(Exception):  # noqa: N818 - reads as what it asks for
    """Raised by an outbox handler for a transient failure; `after_s` overrides the backoff."""

    def __init__(self, reason: str, after_s: float | None = None):
        super().__init__(reason)
        self.after_s = after_s
