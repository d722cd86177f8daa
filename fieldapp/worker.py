"""The outbox worker: claims due rows, runs the handler of each kind, retries, gives up.

Claiming. A row is claimable when it is pending, due, of a kind this worker handles, and not
leased (`locked_until` empty or past). On PostgreSQL candidates are picked with
`SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers do not even wait for each other;
on both databases the claim itself is a compare-and-set UPDATE that sets `locked_by` (unique
per worker) and `locked_until`, and counts the attempt. Every later write about the row
(progress, done, retry) is again a compare-and-set on `locked_by`: a worker whose lease ran
out and was taken over by another cannot write anything, so it cannot send either.

Crash windows of a push (the only kind where "sent twice" is visible to a person):
1. claimed, died before sending: the lease runs out (LEASE_S) and another worker (or this one
   restarted) claims the row and sends it. Nothing lost, nothing doubled.
2. about to send: the worker first commits the ids of the subscriptions it is about to send
   to (`payload.inflight`). If it dies after that commit (during the HTTP request, after the
   push service's 201, or before the final commit), the next claim finds `inflight` set and
   cannot know whether the push service accepted: those subscriptions are marked `uncertain`
   and are NOT sent again. A lost message is still covered: an offer's `receipt_check` sends
   the SMS fallback when no delivery receipt arrives, and the open app sees the offer over the
   live connection (it reads the event log). Per subscription this is at-most-once.
3. the push service accepted: the acceptance (`offer.sent_at`, the `sent` list) is written in
   the same commit that marks the row done. If that commit fails, see 2.
Retries (429, 5xx, network errors) commit the subscriptions already served, so a retry sends
only to the ones that failed.

Handlers are `handler(message, now) -> dict | None`; the dict, if any, is merged into the
row's payload in the same commit that marks it done. They raise `outbox.RetryLater` for
transient failures; any other exception is logged and retried too, until MAX_ATTEMPTS.
"""

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from flask import Flask
from flask_babel import force_locale
from sqlalchemy.orm import joinedload

from fieldapp import clock, dispatch, events, i18n, push, sms
from fieldapp.extensions import db
from fieldapp.models import (
    Event,
    Offer,
    OutboxMessage,
    PushSubscription,
    User,
    Warning,
    WorkerHeartbeat,
)
from fieldapp.outbox import RetryLater

log = logging.getLogger(__name__)

OUTBOX = OutboxMessage.__table__

# Short: a killed worker delays its rows by this much, and offers time out in about 90 s.
# The lease is extended before each batch of sends by the time those sends may take.
LEASE_S = 30
MAX_ATTEMPTS = 10
BATCH = 20
POLL_S = 0.5
# TTL for pushes that are not offers: a reminder an hour late is still worth showing.
DEFAULT_TTL_S = 3600
TEST_TTL_S = 300


class LeaseLost(Exception):  # noqa: N818
    """Another worker took this row over; stop touching it."""


def new_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- leases -------------------------------------------------------------------------------


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
    limit: int = BATCH,
    skip: set[int] = frozenset(),
    only: list[int] | None = None,
) -> list[OutboxMessage]:
    """Lease up to `limit` due rows to `worker` (of the ids `only`, when given) and commit;
    returns them, oldest first.

    One UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) ... RETURNING: on
    PostgreSQL the subquery skips rows another worker is claiming and re-checks the condition
    on rows changed meanwhile; on SQLite the statement holds the write lock throughout.
    The rows come back as plain snapshots outside the session, as they were when leased: as
    session objects the commit would expire them and cost a read each before the handler.
    """
    postgresql = db.engine.dialect.name == "postgresql"
    candidates, lease = _claim_statements(postgresql, bool(skip), limit, only is not None)
    params = {"now": now, "kinds": list(HANDLERS)}
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
    claimed = [_snapshot(row) for row in db.session.connection().execute(lease, params)]
    _commit_without_fsync_wait()
    return sorted(claimed, key=lambda m: (m.due_at, m.id))


def _core(statement):
    """Run a Core statement on the session's connection, in its transaction.

    For the statements between a new warning and its push: the ORM's per-statement work
    (session events, identity bookkeeping) costs about a tenth of a millisecond each, and
    these write plain columns of rows the session does not hold.
    """
    return db.session.connection().execute(statement)


def _snapshot(row: sa.Row) -> OutboxMessage:
    """An outbox row as a plain object outside the session: no commit expires it."""
    return OutboxMessage(**row._asdict())


def _commit_without_fsync_wait() -> None:
    """Commit without waiting for PostgreSQL's WAL flush to disk.

    Used for leases and for the intent written before a send: they are lost only if the
    database *server's machine* crashes in the following fraction of a second (a killed
    worker or a restarted PostgreSQL keeps them), and then the cost is one repeated send or
    one re-claimed row. It saves a disk flush on the path between intake and the push.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        _core(sa.text("SET LOCAL synchronous_commit TO OFF"))
    db.session.commit()


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
    won = (
        db.session.connection()
        .execute(
            _CHECKPOINT,
            {
                "message_id": message.id,
                "worker": message.locked_by,
                "payload": payload,
                "until": locked_until,
            },
        )
        .rowcount
    )
    if won != 1:
        db.session.rollback()
        raise LeaseLost(str(message.id))
    _commit_without_fsync_wait()
    # The claimed copy is a snapshot (see `claim`): keep it equal to what is now committed.
    message.payload, message.locked_until = payload, locked_until
    return payload


def _finish(message: OutboxMessage, now: datetime, changes: dict | None) -> bool:
    values = {"status": "done", "done_at": now, "locked_until": None, "last_error": None}
    if changes:
        values["payload"] = {**message.payload, **changes}
    won = _core(sa.update(OUTBOX).where(_owned(message)).values(**values)).rowcount
    if won != 1:
        db.session.rollback()
        return False
    db.session.commit()
    return True


def _retry(
    message_id: int,
    worker: str,
    now: datetime,
    reason: str,
    after_s: float | None,
    dead: bool = False,
):
    db.session.rollback()
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.locked_by != worker:
        return
    dead = dead or message.attempts >= MAX_ATTEMPTS
    delay = push.backoff_s(message.attempts, after_s)
    db.session.execute(
        sa.update(OutboxMessage)
        .where(_owned(message))
        .values(
            status="dead" if dead else "pending",
            due_at=now + timedelta(seconds=delay),
            locked_until=None,
            last_error=reason[:500],
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if dead:
        log.error(
            "outbox %s (%s) dead after %s attempts: %s",
            message_id,
            message.kind,
            message.attempts,
            reason,
        )


def _still_ours(message: OutboxMessage, worker: str, now: datetime) -> OutboxMessage | None:
    """The row as it is now if `worker` still holds its lease, else None."""
    if message.locked_until - now > timedelta(seconds=LEASE_S - 1):
        return message  # leased under a second ago: nobody else can have taken it
    # Slow handlers before it in the batch may have let the lease run out.
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


def process(claimed: OutboxMessage, worker: str, now: datetime) -> str:
    """Run the handler of a row `claim` returned; returns done, retry or lost."""
    message = _still_ours(claimed, worker, now)
    if message is None:
        return "lost"
    handler = HANDLERS[message.kind]
    return run_leased(message, now, lambda: handler(message, now))


def run_leased(message: OutboxMessage, now: datetime, work: Callable[[], dict | None]) -> str:
    """Run `work` for a row leased to `message.locked_by`, then mark it done or due again.

    Returns done, retry or lost. Shared by the worker and by the express send (express.py).
    """
    worker, message_id = message.locked_by, message.id
    try:
        changes = work()
    except LeaseLost:
        return "lost"
    except RetryLater as exc:
        _retry(message_id, worker, now, str(exc), exc.after_s)
        return "retry"
    except PERMANENT as exc:  # retrying cannot help (bad configuration, a 4xx refusal)
        log.error("outbox %s (%s) failed for good: %s", message_id, message.kind, exc)
        _retry(message_id, worker, now, f"{type(exc).__name__}: {exc}", None, dead=True)
        return "retry"
    except Exception as exc:  # a bug, or the database hiccuped: retried until dead, logged
        log.exception("outbox %s (%s) failed", message_id, message.kind)
        _retry(message_id, worker, now, f"{type(exc).__name__}: {exc}", None)
        return "retry"
    return "done" if _finish(message, now, changes) else "lost"


def heartbeat(worker: str, now: datetime) -> None:
    row = db.session.get(WorkerHeartbeat, worker)
    if row is None:
        db.session.add(WorkerHeartbeat(name=worker, seen_at=now))
    else:
        row.seen_at = now
    db.session.commit()


def run_once(worker: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """Process everything due now, each row at most once per call; returns counts."""
    worker = worker or new_name()
    counts = {"done": 0, "retry": 0, "lost": 0}
    seen: set[int] = set()
    while True:
        at = now or clock.now()
        batch = claim(worker, at, skip=seen)
        if not batch:
            break
        for message in batch:
            seen.add(message.id)
            counts[process(message, worker, now or clock.now())] += 1
    heartbeat(worker, now or clock.now())
    return counts


def run_forever(app: Flask, stop: threading.Event | None = None, poll_s: float = POLL_S) -> None:
    """The worker loop: process what is due, sleep a little when idle, forever."""
    worker = new_name()
    log.info("worker %s started", worker)
    stop = stop or threading.Event()
    while not stop.is_set():
        with app.app_context():
            try:
                counts = run_once(worker)
            except Exception:  # the database may be restarting: wait and try again
                log.exception("worker loop failed")
                db.session.rollback()
                counts = {}
            finally:
                db.session.remove()
        if not any(counts.values()):
            stop.wait(poll_s)


def start_thread(app: Flask) -> threading.Thread:
    """Run the worker loop in a daemon thread of this process (the embedded start)."""
    thread = threading.Thread(target=run_forever, args=(app,), name="outbox-worker", daemon=True)
    thread.start()
    return thread


# --- handlers -----------------------------------------------------------------------------


def message_id_of(message: OutboxMessage) -> str:
    """The stable id a push carries and its receipt names: one per outbox row."""
    return message.payload.get("message_id") or f"m{message.id}"


def outbox_id_of(message_id: str) -> int | None:
    if message_id.startswith("m") and message_id[1:].isdigit():
        return int(message_id[1:])
    return None


def _ttl(push_kind: str, offer: Offer | None, warning: Warning | None, now, test: bool) -> int:
    if offer is not None and offer.expires_at is not None:
        return max(1, int((offer.expires_at - now).total_seconds()))
    if push_kind == "help" and warning is not None:
        return warning.station.ack_timeout_s
    return TEST_TTL_S if test else DEFAULT_TTL_S


@dataclass
class PushJob:
    """One push row, ready to go: rendered payload and the devices still to serve."""

    targets: list[tuple[int, dict]]  # (subscription id, subscription_info)
    payload: dict
    ttl: int
    urgency: str
    uncertain: list[int]
    offer_id: int | None


# Built once, with bound parameters, like _CHECKPOINT.
_RECIPIENT = (
    sa.select(User, PushSubscription)
    .outerjoin(PushSubscription, PushSubscription.user_id == User.id)
    .where(User.id == sa.bindparam("user_id"))
    .order_by(PushSubscription.id)
)


def prepare_push(message: OutboxMessage, now: datetime) -> PushJob | dict:
    """Everything `deliver_push` needs, or the row's final changes when there is nothing to send."""
    data = message.payload
    # The recipient with their devices, and the offer with its warning: two reads, because
    # every one of them sits between a new warning and the phone that buzzes for it.
    rows = db.session.execute(_RECIPIENT, {"user_id": data.get("user_id")}).all()
    user = rows[0][0] if rows else None
    if user is None or not user.active:
        return {"skipped": "no_user"}
    subs = [sub for _user, sub in rows if sub is not None]
    offer = (
        db.session.get(Offer, data["offer_id"], options=[joinedload(Offer.warning)])
        if data.get("offer_id")
        else None
    )
    if offer is not None and offer.status != "pending":
        # Answered, cancelled or expired before we got to it: buzzing now would mislead.
        return {"skipped": f"offer_{offer.status}"}
    warning = db.session.get(Warning, data["warning_id"]) if data.get("warning_id") else None
    push_kind = data.get("push_kind", "reminder")
    test = bool(data.get("test"))

    handled = {*data.get("sent", []), *data.get("gone", []), *data.get("rejected", [])}
    uncertain = set(data.get("uncertain", [])) | set(data.get("inflight", []))
    todo = [s for s in subs if s.id not in handled and s.id not in uncertain]
    if not todo:
        return {"inflight": [], "uncertain": sorted(uncertain)}
    return PushJob(
        targets=[(s.id, push.subscription_info(s)) for s in todo],
        payload=push.build_payload(
            message_id_of(message), push_kind, user, warning, offer, test=test
        ),
        ttl=_ttl(push_kind, offer, warning, now, test),
        urgency="high" if push_kind in ("offer", "help") else "normal",
        uncertain=sorted(uncertain),
        offer_id=offer.id if offer is not None else None,
    )


def deliver_push(message: OutboxMessage, job: PushJob, now: datetime) -> dict:
    """Commit the intent, send to each target, record what the push service said."""
    message_id = message_id_of(message)
    # The intent, committed before any byte leaves: see crash window 2.
    progress = checkpoint(
        message,
        now,
        extra_lease_s=len(job.targets) * push.SEND_TIMEOUT_S,
        inflight=[t[0] for t in job.targets],
        uncertain=job.uncertain,
    )
    sent = list(progress.get("sent", []))
    gone = list(progress.get("gone", []))
    rejected = list(progress.get("rejected", []))
    retry: RetryLater | None = None
    retry_after: float | None = None
    for sub_id, info in job.targets:
        sub = PushSubscription(
            id=sub_id,
            endpoint=info["endpoint"],
            p256dh=info["keys"]["p256dh"],
            auth=info["keys"]["auth"],
        )
        try:
            result = push.send(sub, job.payload, ttl=job.ttl, urgency=job.urgency, topic=message_id)
        except RetryLater as exc:
            retry = exc
            if exc.after_s is not None:
                retry_after = max(retry_after or 0.0, exc.after_s)
            continue
        {push.SENT: sent, push.GONE: gone, push.REJECTED: rejected}[result.status].append(sub_id)

    if gone:
        db.session.execute(sa.delete(PushSubscription).where(PushSubscription.id.in_(gone)))
    _record_results(sent, rejected, now)
    changes = {
        "inflight": [],
        "sent": sent,
        "gone": gone,
        "rejected": rejected,
        "message_id": message_id,
    }
    if retry is not None:
        # Keep what went through, so the retry serves only the failed subscriptions.
        checkpoint(message, now, **changes)
        raise RetryLater(str(retry), after_s=retry_after)
    if job.offer_id is not None and sent:
        db.session.execute(
            sa.update(Offer)
            .where(Offer.id == job.offer_id, Offer.sent_at.is_(None))
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )
        offer = db.session.get(Offer, job.offer_id)
        events.record("push_sent", warning=offer.warning, offer_id=offer.id, devices=len(sent))
    return changes


def handle_push(message: OutboxMessage, now: datetime) -> dict | None:
    """Send one notification to every subscription of payload.user_id (see crash windows)."""
    job = prepare_push(message, now)
    return job if isinstance(job, dict) else deliver_push(message, job, now)


def _record_results(sent: list[int], rejected: list[int], now: datetime) -> None:
    if sent:
        db.session.execute(
            sa.update(PushSubscription)
            .where(PushSubscription.id.in_(sent))
            .values(last_success_at=now, failure_count=0)
        )
    if rejected:
        db.session.execute(
            sa.update(PushSubscription)
            .where(PushSubscription.id.in_(rejected))
            .values(last_failure_at=now, failure_count=PushSubscription.failure_count + 1)
        )


def _sms_text(user: User, warning: Warning | None, offer: Offer | None, test: bool) -> str:
    with force_locale(i18n.locale(user.locale or push.DEFAULT_LOCALE)):
        title, body = push.texts("offer", warning, offer, test=test)
    return f"{title} {body}".strip()


def handle_receipt_check(message: OutboxMessage, now: datetime) -> dict | None:
    """No delivery receipt in time: send the offer (or a test alert) by SMS as well."""
    data = message.payload
    if data.get("offer_id"):
        offer = db.session.get(Offer, data["offer_id"])
        if offer is None or offer.status != "pending":
            return {"skipped": "answered"}
        if offer.delivered_at is not None or offer.fallback_at is not None:
            return {"skipped": "delivered" if offer.delivered_at else "already_sent"}
        officer = offer.officer
        if not officer.phone:
            events.record(
                "fallback_unavailable",
                warning=offer.warning,
                offer_id=offer.id,
                officer_id=officer.id,
                channel="sms",
            )
            return {"skipped": "no_phone"}
        sms.send(officer.phone, _sms_text(officer, offer.warning, offer, False), ref=f"o{offer.id}")
        db.session.execute(
            sa.update(Offer)
            .where(Offer.id == offer.id, Offer.fallback_at.is_(None))
            .values(fallback_at=now)
            .execution_options(synchronize_session=False)
        )
        events.record(
            "fallback_sms",
            warning=offer.warning,
            offer_id=offer.id,
            officer_id=officer.id,
            channel="sms",
        )
        return {"sent": True}
    pushed = db.session.get(OutboxMessage, data.get("push_outbox_id"))
    user = db.session.get(User, data.get("user_id"))
    if pushed is None or user is None or _test_delivered(pushed, user):
        return {"skipped": "delivered"}
    if not user.phone:
        return {"skipped": "no_phone"}
    sms.send(user.phone, _sms_text(user, None, None, True), ref=f"t{pushed.id}")
    events.record(
        "fallback_sms", station_id=user.station_id, officer_id=user.id, channel="sms", test=True
    )
    return {"sent": True}


def _test_delivered(pushed: OutboxMessage, user: User) -> bool:
    receipts = db.session.scalars(
        sa.select(Event.data).where(
            Event.kind == "delivered",
            Event.actor_id == user.id,
            Event.created_at >= pushed.created_at,
        )
    ).all()
    return any(data.get("message_id") == message_id_of(pushed) for data in receipts)


def handle_offer_timeout(message: OutboxMessage, now: datetime) -> dict | None:
    """The offer's time is up: expire it and move on to the next nearest (dispatch.expire)."""
    offer = db.session.get(Offer, message.payload.get("offer_id"))
    if offer is None:
        return {"skipped": "no_offer"}
    return {"expired": dispatch.expire(offer, now)}


# kind -> handler(message, now) -> dict | None. Rows of kinds not listed stay pending.
HANDLERS: dict[str, Callable[[OutboxMessage, datetime], dict | None]] = {
    "push": handle_push,
    "receipt_check": handle_receipt_check,
    "offer_timeout": handle_offer_timeout,
}
# Exceptions that mean "this will never work": the row is marked dead at once.
PERMANENT: tuple[type[Exception], ...] = (sms.SmsError,)

try:  # the centre's webhooks live in their own module (fieldapp/webhooks.py)
    from fieldapp import webhooks
except ImportError:  # pragma: no cover - before that module is merged
    webhooks = None
if webhooks is not None:
    HANDLERS["webhook"] = webhooks.deliver
    if hasattr(webhooks, "WebhookRejected"):
        PERMANENT = (*PERMANENT, webhooks.WebhookRejected)
