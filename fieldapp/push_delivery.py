"""Delivering one push row to every device of its user, and the receipts that come back.

prepare → deliver, the handler of outbox kind "push" (the worker and express.py both run it).

Crash windows (a push is the one kind where "sent twice" is visible to a person):
1. claimed, died before sending: the lease runs out (outbox.LEASE_S) and the next claim sends
   it. Nothing lost, nothing doubled.
2. about to send: the ids of the subscriptions about to be sent to are committed first
   (`payload.inflight`). If the sender dies after that commit (during the HTTP request, after
   the push service's 201, or before the final commit), the next claim finds `inflight` set
   and cannot know whether the push service accepted: those subscriptions are marked
   `uncertain` and are NOT sent again. A lost message is still covered: an offer's
   `receipt_check` sends the SMS fallback when no receipt arrives, and the open app sees the
   offer over the live connection. Per subscription this is at-most-once.
3. the push service accepted: the acceptance (`offer.sent_at`, the `sent` list) is written in
   the same commit that marks the row done. If that commit fails, see 2.
Retries (429, 5xx, network errors, the deadline) commit the subscriptions already served, so
a retry sends only to the ones that failed.

"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from fieldapp import events, outbox, push
from fieldapp.extensions import db
from fieldapp.models import Offer, OutboxMessage, PushSubscription, User, Warning
from fieldapp.outbox import RetryLater
from fieldapp.receipts import message_id_of

# TTL for pushes that are not offers: a reminder an hour late is still worth showing.
DEFAULT_TTL_S = 3600
TEST_TTL_S = 300


@dataclass
class PushJob:
    """One push row, ready to go: rendered payload and the devices still to serve."""

    targets: list[tuple[int, dict]]  # (subscription id, subscription_info)
    payload: dict
    ttl: int
    urgency: str
    uncertain: list[int]
    offer_id: int | None


def _ttl(push_kind: str, offer: Offer | None, warning: Warning | None, now, test: bool) -> int:
    if offer is not None and offer.expires_at is not None:
        return max(1, int((offer.expires_at - now).total_seconds()))
    if push_kind == "help" and warning is not None:
        return warning.station.ack_timeout_s
    return TEST_TTL_S if test else DEFAULT_TTL_S


# Built once, with bound parameters, like outbox._CHECKPOINT.
_RECIPIENT = (
    sa.select(User, PushSubscription)
    .outerjoin(PushSubscription, PushSubscription.user_id == User.id)
    .where(User.id == sa.bindparam("user_id"))
    .order_by(PushSubscription.id)
)


def prepare(message: OutboxMessage, now: datetime) -> PushJob | dict:
    """Everything `deliver` needs, or the row's final changes when there is nothing to send."""
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


def deliver(message: OutboxMessage, job: PushJob, now: datetime) -> dict:
    """Commit the intent, send to each target, record what the push service said."""
    message_id = message_id_of(message)
    # The intent, committed before any byte leaves: see crash window 2.
    progress = outbox.checkpoint(
        message,
        now,
        extra_lease_s=len(job.targets) * push.SEND_DEADLINE_S,
        inflight=[t[0] for t in job.targets],
        uncertain=job.uncertain,
    )
    results = {
        status: list(progress.get(status, [])) for status in (push.SENT, push.GONE, push.REJECTED)
    }
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
        results[result.status].append(sub_id)

    sent, gone, rejected = results[push.SENT], results[push.GONE], results[push.REJECTED]
    if gone:
        db.session.execute(sa.delete(PushSubscription).where(PushSubscription.id.in_(gone)))
    record_results(sent, rejected, now)
    changes = {**results, "inflight": [], "message_id": message_id}
    if retry is not None:
        # Keep what went through, so the retry serves only the failed subscriptions.
        outbox.checkpoint(message, now, **changes)
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


def handle(message: OutboxMessage, now: datetime) -> dict | None:
    """Outbox kind "push": send to every device of payload.user_id (see crash windows)."""
    job = prepare(message, now)
    return job if isinstance(job, dict) else deliver(message, job, now)


def record_results(sent: list[int], rejected: list[int], now: datetime) -> None:
    """Note on each subscription whether its push service took the message."""
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
