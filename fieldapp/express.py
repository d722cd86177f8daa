"""Express send: pushes leave from the request that queued them, right after its response.

The worker finds due rows by polling (every worker.POLL_S) and reads back what the request
that wrote them already had in hand. For the one push where every second counts, the offer of
a new warning, the intake request does the worker's job itself, right after its response:

1. before its commit it leases the push row to itself (the lease commits with the warning, so
   no worker takes the row) and prepares the job: the officer's devices, the rendered payload;
2. once the response has gone out (`Response.call_on_close`), it runs the worker's own
   delivery: intent committed, push sent, row done, or due again for the worker on a failure.

A process that dies between its commit and the send leaves a leased row: the lease runs out
(worker.LEASE_S) and the worker sends the push then. Late, never lost, never sent twice: the
crash windows of worker.py apply unchanged.

Every other push a request queues for now (the next officer's offer after a decline, a
chief's reassignment, the test alert) is claimed by the request after its response, like a
worker would, and sent: the officer does not wait for the worker's next poll either. The
claim is the worker's compare-and-set, so whoever comes first sends, once.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, Response, current_app

from fieldapp import clock, outbox, worker
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass
class Express:
    app: Flask
    message: OutboxMessage  # detached: its loaded state outlives the request's commit
    job: worker.PushJob

    def send(self) -> str:
        """Deliver the prepared push now; returns done, retry or lost (see worker.run_leased)."""
        with self.app.app_context():
            now = clock.now()
            return worker.run_leased(
                self.message, now, lambda: worker.deliver_push(self.message, self.job, now)
            )


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
    message.locked_by = f"express:{worker.new_name()}"
    message.locked_until = now + timedelta(seconds=worker.LEASE_S)
    message.attempts = 1
    db.session.flush()
    job = worker.prepare_push(message, now)
    if not isinstance(job, worker.PushJob):
        # No device to send to: release the row, the worker closes it with the others.
        message.locked_by = message.locked_until = None
        message.attempts = 0
        return None
    db.session.expunge(message)
    return Express(current_app._get_current_object(), message, job)


def send_after(response: Response, express: Express | None) -> Response:
    """Have `express` sent once `response` has gone out (after a successful commit only)."""
    if express is not None:
        response.call_on_close(lambda: _send_quietly(express))
    return response


def _send_quietly(express: Express) -> None:
    # Runs inside the WSGI server's close(): an error here must not reach the server. The row
    # stays leased or due again, so the worker delivers it.
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
        response.call_on_close(lambda: _claim_and_send(app, ids))
    return response


def _claim_and_send(app: Flask, ids: list[int]) -> None:
    # Runs inside the WSGI server's close(), like _send_quietly.
    try:
        with app.app_context():
            name = f"express:{worker.new_name()}"
            now = clock.now()
            for message in worker.claim(name, now, limit=len(ids), only=ids):
                worker.process(message, name, now)
    except Exception:
        log.exception("express push of outbox %s failed; the worker takes over", ids)
