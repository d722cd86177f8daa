"""A bounded pool of threads for outbound sends.

Request threads and the worker's loop hand their sends to a pool instead of making them
themselves: a slow or silent server then holds one pool thread (and, through the per-host
slots of outbound_http, never more than its host's share), not a gunicorn thread nor the
worker's other rows. The queue is bounded too: when it is full `submit` says no and the
caller leaves the work to the outbox worker, which is what it would do after a crash.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask

from fieldapp.extensions import db

log = logging.getLogger(__name__)


class SendPool:
    """`threads` threads, at most `threads + queue` jobs accepted at a time."""

    def __init__(self, name: str, threads: int, queue: int):
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._room = threading.BoundedSemaphore(threads + queue)
        self._idle = threading.Condition()
        self._running = 0

    def submit(self, app: Flask, job: Callable, *args) -> Future | None:
        """Run `job(*args)` in an app context of its own; None when the pool is full."""
        if not self._room.acquire(blocking=False):
            return None
        with self._idle:
            self._running += 1
        try:
            return self._executor.submit(self._run, app, job, args)
        except RuntimeError:  # the interpreter is shutting down
            self._done()
            return None

    def _run(self, app: Flask, job: Callable, args: tuple):
        try:
            with app.app_context():
                try:
                    return job(*args)
                finally:
                    db.session.remove()
        finally:
            self._done()

    def _done(self) -> None:
        self._room.release()
        with self._idle:
            self._running -= 1
            if self._running == 0:
                self._idle.notify_all()

    def free_threads(self) -> int:
        """Threads with nothing to do right now (jobs queued count as busy)."""
        with self._idle:
            return max(0, self.threads - self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)
