"""The outbox worker: the loop that claims due rows, and the table of what each kind does.

The loop claims rows (outbox.claim) as threads of its send pool free up and runs each row's
handler in a thread of its own (sendpool.SendPool), under outbox.run_leased: a row that hangs
on a slow server holds one thread for at most its send deadline, while the other rows go on;
a row that fails in any way is put back with backoff, never leaving its batch-mates leased.
How one push is delivered is push_delivery.py; the SMS fallback is fallback.py.
"""

import logging
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime

from flask import Flask, current_app

from fieldapp import clock, dispatch, fallback, outbox, push_delivery, webhooks
from fieldapp.extensions import db
from fieldapp.models import Offer, OutboxMessage, WorkerHeartbeat
from fieldapp.sendpool import SendPool

log = logging.getLogger(__name__)

BATCH = 20
POLL_S = 0.5
THREADS = 8
HEARTBEAT_S = 10.0


def handle_offer_timeout(message: OutboxMessage, now: datetime) -> dict | None:
    """The offer's time is up: expire it and move on to the next nearest (dispatch.expire)."""
    offer = db.session.get(Offer, message.payload.get("offer_id"))
    if offer is None:
        return {"skipped": "no_offer"}
    return {"expired": dispatch.expire(offer, now)}


# kind -> handler(message, now) -> dict | None, merged into the row's payload when done.
# Rows of kinds not listed stay pending.
HANDLERS = {
    "push": push_delivery.handle,
    "receipt_check": fallback.handle_receipt_check,
    "offer_timeout": handle_offer_timeout,
    "webhook": webhooks.deliver,
}


def process(claimed: OutboxMessage, worker: str, now: datetime | None = None) -> str:
    """Run the handler of a row `outbox.claim` returned; returns done, retry or lost."""
    now = now or clock.now()
    message = outbox.still_leased(claimed, worker, now)
    if message is None:
        return "lost"
    handler = HANDLERS[message.kind]
    return outbox.run_leased(message, now, lambda: handler(message, now))


def _process_quietly(claimed: OutboxMessage, worker: str, now: datetime | None) -> str:
    # In a pool thread: whatever happens, the loop goes on; an unfinished row's lease runs
    # out and it is claimed again, its attempts counted towards outbox.MAX_ATTEMPTS.
    try:
        return process(claimed, worker, now)
    except Exception:
        log.exception("outbox %s (%s): processing failed", claimed.id, claimed.kind)
        db.session.rollback()
        return "retry"


_pool: SendPool | None = None
_pool_lock = threading.Lock()


def pool() -> SendPool:
    """This process's worker threads, made on first use (after a fork, never before)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = SendPool("outbox-worker", THREADS, queue=THREADS)
        return _pool


def run_once(worker: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """Process everything due now, each row at most once per call; returns counts.

    Rows are claimed as pool threads free up, not batch by batch, so one slow row delays
    nothing but itself.
    """
    worker = worker or outbox.new_name()
    app = current_app._get_current_object()
    threads = pool()
    counts = Counter({"done": 0, "retry": 0, "lost": 0})
    seen: set[int] = set()
    running: set[Future] = set()
    beat_at = time.monotonic() + HEARTBEAT_S
    while True:
        if time.monotonic() > beat_at:  # a long run still tells readiness checks it is alive
            heartbeat(worker, now or clock.now())
            beat_at = time.monotonic() + HEARTBEAT_S
        room = min(BATCH, threads.free_threads())
        batch = []
        if room > 0:
            batch = outbox.claim(worker, now or clock.now(), list(HANDLERS), room, skip=seen)
        for message in batch:
            future = threads.submit(app, _process_quietly, message, worker, now)
            if future is None:  # another loop of this process took the threads meanwhile
                outbox.release(message)
                continue
            seen.add(message.id)
            running.add(future)
        if not running:
            if batch:
                continue  # every claimed row was given back: try again
            break
        finished, running = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
        for future in finished:
            counts[future.result()] += 1
    heartbeat(worker, now or clock.now())
    return dict(counts)


def heartbeat(worker: str, now: datetime) -> None:
    """Note that `worker` is alive (the readiness check reads it)."""
    row = db.session.get(WorkerHeartbeat, worker)
    if row is None:
        db.session.add(WorkerHeartbeat(name=worker, seen_at=now))
    else:
        row.seen_at = now
    db.session.commit()


def run_forever(app: Flask, stop: threading.Event | None = None, poll_s: float = POLL_S) -> None:
    """The worker loop: process what is due, sleep a little when idle, forever."""
    worker = outbox.new_name()
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
