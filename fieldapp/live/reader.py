"""The one event reader of a process: LISTEN/NOTIFY on PostgreSQL, one poll on SQLite.

PostgreSQL: an AFTER INSERT trigger on `events` (migration 0004_live) runs pg_notify with the
new id, inside the writing transaction, so the notification arrives on commit. The reader
LISTENs on its own connection and, on each notification, reads every event after the last one
it handed out. If the connection drops it reconnects and reads from that same id, so no event
is missed; a read every SAFETY_S covers a notification lost any other way. A notified id at
or below the last one handed out (a transaction that took its id early and committed late) is
read by id.
"""

import logging
import time

import psycopg
import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.live.items import Facts
from fieldapp.models import Event

log = logging.getLogger(__name__)

CHANNEL = "fieldapp_events"
BATCH = 500
SAFETY_S = 5.0
WAIT_S = 1.0  # how often the reader looks whether any stream is still open


def read_new(hub, late: set[int] = frozenset()) -> int:
    """Read events after hub.last_seen (and the `late` ids), hand them out; returns how many."""
    total = 0
    with hub.app.app_context():
        try:
            while True:
                cond = Event.id > hub.last_seen
                if late:
                    cond = sa.or_(cond, Event.id.in_(sorted(late)))
                    late = frozenset()
                rows = db.session.scalars(
                    sa.select(Event).where(cond).order_by(Event.id).limit(BATCH)
                ).all()
                hub.reads += 1
                batch = [Facts.load(e) for e in rows if e.id not in hub.recent]
                if rows:
                    hub.last_seen = max(hub.last_seen, rows[-1].id)
                hub.dispatch(batch)
                total += len(batch)
                db.session.rollback()
                if len(rows) < BATCH:
                    return total
        finally:
            db.session.remove()


def run(hub) -> None:
    """The reader thread (a greenlet under gevent): runs while any stream is open."""
    try:
        if hub.app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            _listen(hub)
        else:
            _poll(hub)
    except Exception:
        log.exception("live: reader stopped")
        with hub.lock:
            hub.reader = None


def _poll(hub) -> None:
    poll_s = float(hub.app.config.get("LIVE_POLL_S", 0.25))
    while hub.wanted():
        try:
            read_new(hub)
        except Exception:
            log.exception("live: reading the event log failed; retrying")
        time.sleep(poll_s)


def _conninfo(hub) -> str:
    with hub.app.app_context():
        url = db.engine.url
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _listen(hub) -> None:
    conninfo = _conninfo(hub)
    backoff = 0.1
    while hub.wanted():
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                hub.listener_pid = conn.info.backend_pid
                backoff = 0.1
                # Listening now: whatever committed while we were not is read from the log.
                read_new(hub)
                _wait_loop(hub, conn)
        except (psycopg.Error, OSError, sa.exc.SQLAlchemyError) as exc:
            hub.listener_pid = None
            log.warning("live: listener connection lost (%s); reconnecting", exc)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def _wait_loop(hub, conn) -> None:
    last_read = time.monotonic()
    wait_s = float(hub.app.config.get("LIVE_WAIT_S", WAIT_S))
    while hub.wanted():
        late: set[int] = set()
        woke = False
        for note in conn.notifies(timeout=wait_s, stop_after=1):
            try:
                event_id = int(note.payload)
            except ValueError:
                continue
            if event_id > hub.last_seen:
                woke = True
            elif event_id not in hub.recent:
                late.add(event_id)
        now = time.monotonic()
        if woke or late or now - last_read >= SAFETY_S:
            read_new(hub, late)
            last_read = now
