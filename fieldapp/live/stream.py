"""The SSE response both live streams share: catch up from the event log, then follow the hub.

A stream subscribes first, then reads the log after the client's Last-Event-ID (its catch-up),
then sends what the hub hands it, skipping ids the catch-up already sent. It holds no database
connection while it waits and ends after `seconds` (the browser reconnects with Last-Event-ID).
Open streams per user are capped: one more is refused with 429 (never an old one dropped, so
tabs do not take turns knocking each other off); the cap is per process.
"""

import queue
import random
import time
from collections.abc import Callable

from flask import Response, current_app, jsonify, stream_with_context
from flask_babel import gettext as _

from fieldapp import events
from fieldapp.extensions import db
from fieldapp.live.hub import get as get_hub
from fieldapp.live.items import Facts

CATCH_UP_BATCH = 500


def response(
    *,
    key: tuple,
    station_id: int | None,
    render: Callable[[Facts], str],
    last_id: int,
    seconds: float,
    keepalive: float,
    retry_ms: int,
    full: bool = True,
) -> Response:
    """The text/event-stream response for one open stream (or 429 over the per-user cap)."""
    hub = get_hub(current_app._get_current_object())
    db.session.rollback()  # give the request's connection back before anything waits
    sub = hub.subscribe(key, station_id, render)
    if sub is None:
        message = _("Too many open live connections: close another Fieldapp tab, then try again.")
        resp = jsonify(error="too_many_streams", message=message)
        resp.status_code = 429
        resp.headers["Retry-After"] = "30"
        return resp

    def generate():
        last = last_id
        sent: set[int] = set()
        try:
            # The start as the first id: a browser that hears no event before this stream ends
            # still resumes from here, not from "now", so nothing made in between is missed.
            yield f"retry: {retry_ms}\nid: {last}\n\n"
            while True:  # catch-up from the event log
                rows = events.since(last, station_id, limit=CATCH_UP_BATCH)
                out = []
                for event in rows:
                    last = event.id
                    sent.add(event.id)
                    out.append(render(Facts.load(event) if full else Facts.light(event)))
                db.session.rollback()  # end the read transaction; give the connection back
                text = "".join(out)
                if text:
                    yield text
                elif rows:  # only events not for this stream: still move Last-Event-ID on
                    yield f"id: {last}\n: skip\n\n"
                if len(rows) < CATCH_UP_BATCH:
                    break
            db.session.remove()
            yield from _follow(sub, sent, last, seconds, keepalive, floor=last_id)
        finally:
            hub.unsubscribe(sub)

    resp = Response(stream_with_context(generate()), mimetype="text/event-stream")
    resp.call_on_close(lambda: hub.unsubscribe(sub))
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"
    return resp


def lifetime(seconds: float) -> float:
    """How long one stream stays open: `seconds`, less up to a fifth at random, so the phones
    that all connected after a restart do not all reconnect in the same second again."""
    return seconds * random.uniform(0.8, 1.0)


def _follow(sub, sent: set[int], last: int, seconds: float, keepalive: float, floor: int):
    """What the hub hands this stream until `seconds` are up, the hub drops it or it closes.

    A keep-alive goes out whenever nothing was written for `keepalive` seconds: a proxy or
    carrier NAT would cut a connection that stays silent. It carries the newest id the hub
    skipped for this stream (events for other officers), once nothing is queued before it.
    """
    deadline = time.monotonic() + lifetime(seconds)
    written = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now - written >= keepalive:
            moved = _skipped_to(sub, last)
            yield f"id: {moved}\n: keep-alive\n\n" if moved > last else ": keep-alive\n\n"
            last, written = max(last, moved), now
            continue
        try:
            event_id, text = sub.queue.get(timeout=min(keepalive - (now - written), deadline - now))
        except queue.Empty:
            continue
        if text is None:  # dropped by the hub
            return
        if event_id in sent or event_id <= floor:
            continue
        # The id the client resumes from only moves forward (a late commit is sent, not undone).
        last = max(last, event_id)
        yield text
        written = time.monotonic()
    moved = _skipped_to(sub, last)
    if moved > last:
        yield f"id: {moved}\n: skip\n\n"


def _skipped_to(sub, last: int) -> int:
    """The id the client may resume from: the hub's skipped id, when nothing it handed this
    stream before that id is still queued (the hub hands out events in id order)."""
    skipped = sub.skipped  # read first: anything handed out before it is queued by now
    return skipped if skipped > last and sub.queue.empty() else last
