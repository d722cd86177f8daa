"""The process's open streams: who listens to which station, and the fan-out of each event.

One Hub per app (per process): every open stream subscribes here; the reader (reader.py) hands
each new event to `dispatch`, which makes each stream's text and puts it on that stream's
bounded queue. A stream whose queue is full (its client reads too slowly) is dropped; its
browser reconnects with Last-Event-ID and catches up from the event log.
"""

import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask

from fieldapp.extensions import db
from fieldapp.live.items import Facts
from fieldapp.models import Event

log = logging.getLogger(__name__)

# Ends a stream: its queue overflowed or the hub was stopped.
CLOSE = (0, None)
_ids = itertools.count(1)


class Subscriber:
    """One open stream: its filter, how it renders an event, and its queue."""

    def __init__(self, key, station_id: int | None, render: Callable[[Facts], str], size: int):
        self.id = next(_ids)
        self.key = key  # (stream kind, user id): the per-user cap counts these
        self.station_id = station_id  # None: every station (an admin's board)
        self.render = render
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.closed = False
        # The newest event id that had nothing for this stream. Written without waking the
        # stream: with thousands of streams on a station, waking each for every event it
        # ignores cost the web worker more than the requests it serves. The keep-alive
        # carries it as the stream's id, so a reconnect need not read those events again.
        self.skipped = 0

    def wants(self, facts: Facts) -> bool:
        return self.station_id is None or facts.station_id == self.station_id


class Hub:
    """Open streams of one process and the single event reader feeding them."""

    def __init__(self, app: Flask):
        self.app = app
        self.lock = threading.Lock()
        self.subs: dict[int, Subscriber] = {}
        self.by_key: dict[tuple, deque[int]] = {}
        self.last_seen = 0  # the newest event id the reader has handed out
        self.recent: deque[int] = deque(maxlen=2048)  # ids handed out, for late commits
        self.reader: threading.Thread | None = None
        self.stopped = False
        self.listener_pid: int | None = None  # the LISTEN connection's backend (PostgreSQL)
        self.reads = 0  # event-log reads by the reader, for tests and the benchmark

    @property
    def per_user(self) -> int:
        return int(self.app.config.get("LIVE_STREAMS_PER_USER", 3))

    def subscribe(self, key, station_id, render) -> Subscriber | None:
        """Register a stream; None when `key` already holds its cap of open streams.

        Call it holding no database connection: starting the reader reads one.
        """
        size = int(self.app.config.get("LIVE_QUEUE", 256))
        sub = Subscriber(key, station_id, render, size)
        if not self._reading():
            # The starting point is fixed before the new stream's own catch-up read, so an
            # event committed in between is found by one of the two (streams skip repeats).
            # Read outside the lock: under gevent a lock held across a query would stall
            # every stream opening behind it.
            self._refresh_last_seen()
        with self.lock:
            held = self.by_key.setdefault(key, deque())
            if len(held) >= self.per_user:
                return None
            held.append(sub.id)
            self.subs[sub.id] = sub
            if not self._reading():
                self._start_reader()
        return sub

    def _reading(self) -> bool:
        return self.reader is not None and self.reader.is_alive()

    def unsubscribe(self, sub: Subscriber) -> None:
        with self.lock:
            if self.subs.pop(sub.id, None) is None:
                return
            held = self.by_key.get(sub.key)
            if held is not None:
                held.remove(sub.id)
                if not held:
                    del self.by_key[sub.key]

    def count(self) -> int:
        return len(self.subs)

    def wanted(self) -> bool:
        """Whether the reader should go on; it ends (under the lock) when no stream is open."""
        with self.lock:
            if self.subs and not self.stopped:
                return True
            self.reader = None
            return False

    def _refresh_last_seen(self) -> None:
        with self.app.app_context():
            try:
                newest = db.session.scalar(sa.select(sa.func.max(Event.id))) or 0
            finally:
                db.session.remove()
        self.last_seen = max(self.last_seen, newest)

    def _start_reader(self) -> None:
        from fieldapp.live import reader

        self.reader = threading.Thread(
            target=reader.run, args=(self,), name="fieldapp-live", daemon=True
        )
        self.reader.start()

    def dispatch(self, batch: list[Facts]) -> None:
        """Hand each event to every open stream that may see it (in an app context)."""
        subs = list(self.subs.values())
        for facts in batch:
            self.recent.append(facts.id)
            for sub in subs:
                if sub.closed or not sub.wants(facts):
                    continue
                try:
                    text = sub.render(facts)
                except Exception:  # one stream's bad render must not stop the others
                    log.exception("live: rendering event %s failed", facts.id)
                    text = ""
                if not text:
                    sub.skipped = max(sub.skipped, facts.id)
                    continue
                try:
                    sub.queue.put_nowait((facts.id, text))
                except queue.Full:
                    self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        # Too slow a reader: end the stream; its client reconnects and catches up.
        sub.closed = True
        self.unsubscribe(sub)
        with sub.queue.mutex:
            sub.queue.queue.clear()
        sub.queue.put_nowait(CLOSE)

    def stop(self) -> None:
        """End the reader and every open stream (tests: a process restart)."""
        with self.lock:
            self.stopped = True
            subs = list(self.subs.values())
        for sub in subs:
            self._drop(sub)
        thread = self.reader
        if thread is not None:
            thread.join(timeout=5)


_hubs_lock = threading.Lock()


def get(app: Flask) -> Hub:
    """This app's hub, made on first use (after a fork, never before)."""
    with _hubs_lock:
        hub = app.extensions.get("fieldapp_live")
        if hub is None or hub.stopped:
            hub = app.extensions["fieldapp_live"] = Hub(app)
        return hub
