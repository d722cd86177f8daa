"""The outbox: background work queued in the caller's transaction, leased, finished, retried.

Enqueue. A row is written in the same transaction as the change that causes it, so it exists
exactly when that change does.

Claim. A row is claimable when it is pending, due, of a kind some handler serves, and not
leased (`locked_until` empty or past). On PostgreSQL candidates are picked with
`SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers do not even wait for each other;
on both databases the claim itself is a compare-and-set UPDATE that sets `locked_by` (unique
per claimant) and `locked_until`, and counts the attempt.

Lease. Every later write about the row (progress, done, retry) is again a compare-and-set on
`locked_by`: a claimant whose lease ran out and was taken over cannot write anything, so it
cannot send either (it raises LeaseLost).

Finish or retry (`run_leased`). The work's result is merged into the payload in the commit
that marks the row done. Any failure, of whatever kind, puts the row back with backoff; a row
is `dead` after MAX_ATTEMPTS, or at once when retrying cannot help (PERMANENT). Every delay
is clamped, so no server's Retry-After can overflow a date or park a row for years.
"""

import logging
import math
import os
import random
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa

from fieldapp import clock
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage

log = logging.getLogger(__name__)

OUTBOX = OutboxMessage.__table__
# Short: a killed worker delays its rows by this much, and offers time out in about 90 s.
# The lease is extended before each send by the time that send may take.
LEASE_S = 30
MAX_ATTEMPTS = 10
# Backoff for retries: 5 s, 10 s, 20 s ... capped at 15 minutes, each with ±25 % jitter.
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 900.0
# A server's Retry-After is honoured up to this; past it the row is retried anyway.
RETRY_AFTER_CAP_S = 3600.0
# session.info key: the rows of EXPRESS_KINDS this session queued for now (express.py sends
# them once the response is out).
DUE_NOW = "outbox_due_now"
EXPRESS_KINDS = ("push", "receipt_check")


class RetryLater(Exception):  # noqa: N818 - reads as what it asks for
    """Raised by an outbox handler for a transient failure; `after_s` overrides the backoff."""

    def __init__(self, reason: str, after_s: float | None = None):
        super().__init__(reason)
        self.after_s = after_s


class LeaseLost(Exception):  # noqa: N818
    """Another claimant took this row over; stop touching it."""


# Exceptions that mean "this will never work": the row is dead at once. Modules that raise
# one add it here (sms.SmsError, webhooks.WebhookRejected).
PERMANENT: list[type[Exception]] = []


def new_name() -> str:
    """A claimant name unique to this process and call."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
    if kind in EXPRESS_KINDS and message.due_at <= now:
        # A request sends these itself once its response is out (express.py).
        db.session.info.setdefault(DUE_NOW, []).append(message)
    return message


def backoff_s(attempts: int, retry_after_s: float | None = None) -> float:
    """Seconds to wait before attempt `attempts + 1`: exponential with jitter, never sooner
    than a sane Retry-After, never later than RETRY_AFTER_CAP_S."""
    exp = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(max(0, attempts - 1), 20))
    delay = exp * random.uniform(0.75, 1.25)
    if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s > 0:
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return delay


# --- claiming -----------------------------------------------------------------------------


def _claimable():
    now = sa.bindparam("now", type_=OUTBOX.c.due_at.type)
    return sa.and_(
        OUTBOX.c.status == "pending",
        OUTBOX.c.due_at <= now,
        OUTBOX.c.kind.in_(sa.bindparam("kinds", expanding=True)),
        sa.or_(OUTBOX.c.locked_until.is_(None), OUTBOX.c.locked_until < now),
    )


@lru_cache(maxsize=16)
def _claim_statements(postgresql: bool, skipping: bool, limit: int, chosen: bool = False):
    """(candidates, claim) for one shape, built once: see _CHECKPOINT."""
    candidates = sa.select(OUTBOX.c.id).where(_claimable())
    if chosen:
        candidates = candidates.where(OUTBOX.c.id.in_(sa.bindparam("only", expanding=True)))
    if skipping:
        candidates = candidates.where(OUTBOX.c.id.not_in(sa.bindparam("skip", expanding=True)))
    candidates = candidates.order_by(OUTBOX.c.due_at, OUTBOX.c.id).limit(limit)
    if postgresql:
        candidates = candidates.with_for_update(skip_locked=True)
    lease = (
        sa.update(OUTBOX)
        .where(OUTBOX.c.id.in_(candidates.scalar_subquery()), _claimable())
        .values(
            locked_by=sa.bindparam("worker"),
            locked_until=sa.bindparam("until", type_=OUTBOX.c.locked_until.type),
            attempts=OUTBOX.c.attempts + 1,
        )
        .returning(*OUTBOX.c)
    )
    return candidates, lease


def claim(
    worker: str,
    now: datetime,
    kinds: list[str],
    limit: int,
    skip: set[int] = frozenset(),
    only: list[int] | None = None,
) -> list[OutboxMessage]:
    """Lease up to `limit` due rows of `kinds` to `worker` (of the ids `only`, when given)
    and commit; returns them, oldest first.

    One UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) ... RETURNING: on
    PostgreSQL the subquery skips rows another worker is claiming and re-checks the condition
    on rows changed meanwhile; on SQLite the statement holds the write lock throughout.
    The rows come back as plain snapshots outside the session, as they were when leased: as
    session objects the commit would expire them and cost a read each before the handler.
    """
    postgresql = db.engine.dialect.name == "postgresql"
    candidates, lease = _claim_statements(postgresql, bool(skip), limit, only is not None)
    params = {"now": now, "kinds": kinds}
    if skip:
        params["skip"] = sorted(skip)
    if only is not None:
        params["only"] = list(only)
    if not postgresql and db.session.scalar(candidates, params) is None:
        # A plain read first: an idle worker then never takes SQLite's write lock to find
        # nothing. (PostgreSQL's UPDATE finding nothing locks nothing, so it needs no read.)
        db.session.rollback()
        return []
    params.update(worker=worker, until=now + timedelta(seconds=LEASE_S))
    claimed = [_snapshot(row) for row in core(lease, params)]
    commit_without_fsync_wait()
    return sorted(claimed, key=lambda m: (m.due_at, m.id))


def core(statement, params: dict | None = None):
    """Run a Core statement on the session's connection, in its transaction.

    For the statements between a new warning and its push: the ORM's per-statement work
    (session events, identity bookkeeping) costs about a tenth of a millisecond each, and
    these write plain columns of rows the session does not hold.
    """
    return db.session.connection().execute(statement, params)


def _snapshot(row: sa.Row) -> OutboxMessage:
    """An outbox row as a plain object outside the session: no commit expires it."""
    return OutboxMessage(**row._asdict())


def commit_without_fsync_wait() -> None:
    """Commit without waiting for PostgreSQL's WAL flush to disk.

    Used for leases and for the intent written before a send: they are lost only if the
    database *server's machine* crashes in the following fraction of a second (a killed
    worker or a restarted PostgreSQL keeps them), and then the cost is one repeated send or
    one re-claimed row. It saves a disk flush on the path between intake and the push.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        core(sa.text("SET LOCAL synchronous_commit TO OFF"))
    db.session.commit()


def still_leased(message: OutboxMessage, worker: str, now: datetime) -> OutboxMessage | None:
    """The row as it is now if `worker` still holds its lease, else None."""
    if message.locked_until - now > timedelta(seconds=LEASE_S - 1):
        return message  # leased under a second ago: nobody else can have taken it
    # Slow rows before it may have let the lease run out.
    row = db.session.execute(sa.select(*OUTBOX.c).where(OUTBOX.c.id == message.id)).first()
    if row is None:
        return None
    fresh = _snapshot(row)
    ours = (
        fresh.locked_by == worker
        and fresh.status == "pending"
        and fresh.locked_until is not None
        and fresh.locked_until > now
    )
    return fresh if ours else None


# --- writes under the lease ---------------------------------------------------------------


def _owned(message: OutboxMessage):
    return sa.and_(
        OUTBOX.c.id == message.id,
        OUTBOX.c.locked_by == message.locked_by,
        OUTBOX.c.status == "pending",
    )


# Statements on the path from a new warning to its push are built once, with bound
# parameters: building one anew (and its cache key) costs about what the database takes.
_CHECKPOINT = (
    sa.update(OUTBOX)
    .where(
        OUTBOX.c.id == sa.bindparam("message_id"),
        OUTBOX.c.locked_by == sa.bindparam("worker"),
        OUTBOX.c.status == "pending",
    )
    .values(
        payload=sa.bindparam("payload", type_=OUTBOX.c.payload.type),
        locked_until=sa.bindparam("until", type_=OUTBOX.c.locked_until.type),
    )
)


def checkpoint(message: OutboxMessage, now: datetime, extra_lease_s: float = 0, **changes) -> dict:
    """Commit payload progress now (before a send), extending the lease; LeaseLost if gone."""
    payload = {**message.payload, **changes}
    locked_until = now + timedelta(seconds=LEASE_S + extra_lease_s)
    params = {
        "message_id": message.id,
        "worker": message.locked_by,
        "payload": payload,
        "until": locked_until,
    }
    if core(_CHECKPOINT, params).rowcount != 1:
        db.session.rollback()
        raise LeaseLost(str(message.id))
    commit_without_fsync_wait()
    # The claimed copy is a snapshot (see `claim`): keep it equal to what is now committed.
    message.payload, message.locked_until = payload, locked_until
    return payload


def finish(message: OutboxMessage, now: datetime, changes: dict | None) -> bool:
    """Mark the row done (with `changes` merged into its payload); False if not ours."""
    values = {"status": "done", "done_at": now, "locked_until": None, "last_error": None}
    if changes:
        values["payload"] = {**message.payload, **changes}
    if core(sa.update(OUTBOX).where(_owned(message)).values(**values)).rowcount != 1:
        db.session.rollback()
        return False
    db.session.commit()
    return True


def retry(message: OutboxMessage, now: datetime, reason: str, after_s: float | None, dead=False):
    """Put the row back, due after the backoff (or `dead` for good); nothing if not ours."""
    db.session.rollback()
    attempts = db.session.scalar(sa.select(OUTBOX.c.attempts).where(_owned(message)))
    if attempts is None:
        return
    dead = dead or attempts >= MAX_ATTEMPTS
    due_at = now + timedelta(seconds=backoff_s(attempts, after_s))
    core(
        sa.update(OUTBOX)
        .where(_owned(message))
        .values(
            status="dead" if dead else "pending",
            due_at=due_at,
            locked_until=None,
            last_error=reason[:500],
        )
    )
    db.session.commit()
    if dead:
        log.error(
            "outbox %s (%s) dead after %s tries: %s",
            message.id,
            message.kind,
            attempts,
            reason[:200],
        )


def release(message: OutboxMessage) -> None:
    """Give a leased row back untried (its attempt not counted), due at once."""
    core(
        sa.update(OUTBOX)
        .where(_owned(message))
        .values(locked_by=None, locked_until=None, attempts=OUTBOX.c.attempts - 1)
    )
    db.session.commit()


def run_leased(message: OutboxMessage, now: datetime, work: Callable[[], dict | None]) -> str:
    """Run `work` for a row leased to `message.locked_by`, then mark it done or due again.

    Returns done, retry or lost. Whatever `work` raises, the row is never left leased
    longer than its lease: it is retried with backoff, and dead after MAX_ATTEMPTS.
    """
    if message.attempts > MAX_ATTEMPTS:
        # Claimed again and again without ever being put back (the process died each time).
        retry(message, now, "attempts exhausted without an answer", None, dead=True)
        return "retry"
    try:
        changes = work()
        return "done" if finish(message, now, changes) else "lost"
    except LeaseLost:
        return "lost"
    except RetryLater as exc:
        reason, after_s, dead = str(exc), exc.after_s, False
    except tuple(PERMANENT) as exc:  # retrying cannot help (bad configuration, a refusal)
        log.error("outbox %s (%s) failed for good: %s", message.id, message.kind, exc)
        reason, after_s, dead = f"{type(exc).__name__}: {exc}", None, True
    except Exception as exc:  # a bug, an overflow, the database hiccuped: retried until dead
        log.exception("outbox %s (%s) failed", message.id, message.kind)
        reason, after_s, dead = f"{type(exc).__name__}: {exc}", None, False
    try:
        retry(message, now, reason, after_s, dead=dead)
    except Exception:  # the database is away: the lease runs out and the row is claimed again
        log.exception("outbox %s (%s): could not record the retry", message.id, message.kind)
        db.session.rollback()
    return "retry"
