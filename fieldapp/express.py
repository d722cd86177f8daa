"""Express send: pushes leave right after the response of the request that queued them.

The worker finds due rows by polling (every half second) and reads back what the request
that wrote them already had in hand. For the one push where every second counts, the offer of
a new warning, the intake request prepares the worker's job itself:

1. before its commit it leases the push row to itself (the lease commits with the warning, so
   no worker takes the row) and prepares the job: the officer's devices, the rendered payload;
2. once the response has gone out (`Response.call_on_close`), it hands the job to this
   process's send pool, whose thread runs the delivery (push_delivery.deliver under
   outbox.run_leased): intent committed, push sent, row done, or due again on a failure.

The request thread itself never sends: a push service that trickles its answer holds a pool
thread (at most its host's slots, outbound_http) until the deadline, never a request thread.
When the pool is full the row is given back to the worker at once.

A process that dies between its commit and the send leaves a leased row: the lease runs out
(outbox.LEASE_S) and the worker sends the push then. Late, never lost, never sent twice: the
crash windows of push_delivery.py apply unchanged.

Every other push a request queues for now (the next officer's offer after a decline, a
chief's reassignment, the test alert), and the SMS of an offer whose officer has no device to
push to (fallback.schedule), is claimed in the pool after the response, like a worker would,
and sent. The claim is the worker's compare-and-set, so whoever comes first
sends, once.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, Response, current_app

from fieldapp import clock, fallback, outbox, push_delivery
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage
from fieldapp.sendpool import SendPool

log = logging.getLogger(__name__)

# More threads than one host may hold (outbound_http.HOST_SLOTS): a slow push service
# leaves threads for the others.
THREADS = 8
QUEUE = 64
# What a request may queue for now (outbox.EXPRESS_KINDS) and who sends it.
_HANDLERS = {"push": push_delivery.handle, "receipt_check": fallback.handle_receipt_check}


@dataclass
class Express:
    app: Flask
    message: OutboxMessage  # detached: its loaded state outlives the request's commit
    job: push_delivery.PushJob

    def send(self) -> str:
        """Deliver the prepared push now; returns done, retry or lost (see outbox.run_leased)."""
        now = clock.now()
        return outbox.run_leased(
            self.message, now, lambda: push_delivery.deliver(self.message, self.job, now)
        )


_pool: SendPool | None = None
_pool_lock = threading.Lock()


def pool() -> SendPool:
    """This process's express threads, made on first use (after a fork, never before)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = SendPool("express-push", THREADS, QUEUE)
        return _pool


def prepare(message: OutboxMessage | None) -> Express | None:
    """Lease a push row, not yet committed, to this request and prepare its send.

    Call before the commit; None when express sending is off or there is nothing to send
    (the row is then left to the worker as usual).
    """
    if message is None or not current_app.config.get("EXPRESS_PUSH", True):
        return None
    due_now = db.session.info.get(outbox.DUE_NOW, [])
    if message in due_now:
        due_now.remove(message)  # leased here, not claimed after the response
    now = clock.now()
    message.locked_by = f"express:{outbox.new_name()}"
    message.locked_until = now + timedelta(seconds=outbox.LEASE_S)
    message.attempts = 1
    db.session.flush()
    job = push_delivery.prepare(message, now)
    if not isinstance(job, push_delivery.PushJob):
        # No device to send to: claimed after the response like the others, so its handler
        # sends the SMS at once (push_delivery.handle).
        message.locked_by = message.locked_until = None
        message.attempts = 0
        db.session.info.setdefault(outbox.DUE_NOW, []).append(message)
        return None
    db.session.expunge(message)
    return Express(current_app._get_current_object(), message, job)


def send_after(response: Response, express: Express | None) -> Response:
    """Have `express` sent once `response` has gone out (after a successful commit only)."""
    if express is not None:
        response.call_on_close(lambda: _hand_over(express))
    return response


def _hand_over(express: Express) -> None:
    # Runs inside the WSGI server's close(): only a hand-over, never a send.
    if pool().submit(express.app, _send_quietly, express) is None:
        log.warning("express pool full; outbox %s left to the worker", express.message.id)
        with express.app.app_context():
            try:
                outbox.release(express.message)
            except Exception:  # the lease runs out instead, and the worker sends it then
                log.exception("could not give outbox %s back to the worker", express.message.id)
            finally:
                db.session.remove()


def _send_quietly(express: Express) -> None:
    try:
        express.send()
    except Exception:
        log.exception("express push of outbox %s failed; the worker takes over", express.message.id)


def init_app(app: Flask) -> None:
    app.after_request(_send_due_pushes_after)


def _send_due_pushes_after(response: Response) -> Response:
    """Have the pushes this request queued for now sent once its response is out."""
    queued = db.session.info.pop(outbox.DUE_NOW, [])
    if not queued or not current_app.config.get("EXPRESS_PUSH", True):
        return response
    # Committed rows only: a rolled-back request's rows are transient again.
    states = [sa.inspect(message) for message in queued]
    ids = [state.identity[0] for state in states if state.persistent and state.identity]
    if ids:
        app = current_app._get_current_object()
        response.call_on_close(lambda: pool().submit(app, _claim_and_send, ids))
    return response


def _claim_and_send(ids: list[int]) -> None:
    # A full pool drops this hand-over: the rows are not claimed, so the worker sends them.
    name = f"express:{outbox.new_name()}"
    try:
        now = clock.now()
        for claimed in outbox.claim(name, now, list(_HANDLERS), len(ids), only=ids):
            message = outbox.still_leased(claimed, name, now)
            if message is not None:
                handler = _HANDLERS[message.kind]
                outbox.run_leased(message, now, lambda m=message, h=handler: h(m, now))
    except Exception:
        log.exception("express push of outbox %s failed; the worker takes over", ids)


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until every handed-over send has finished (tests, and a graceful stop)."""
    return pool().wait_idle(timeout)
