"""POST to a vetted address: a total deadline, no redirects, a few slots per host.

Every outbound call (push services, webhooks, the SMS gateway) goes through `post`:

- it connects to an address outbound_rule vetted, never to a fresh DNS answer, and checks
  the certificate against the host's name (SNI and Host header carry the name);
- it never follows a redirect: a 3xx is an answer like any other;
- it has one deadline for everything (connect, TLS, request, the whole answer). A socket
  timeout bounds one read only, so a server trickling a byte every few seconds would hold
  a send for ever: a watchdog thread shuts the socket down when the deadline passes;
- at most `HOST_SLOTS` sends to one host (and port) run at once in this process; a send that
  cannot get a slot within HOST_WAIT_S raises HostBusy, so a slow host holds its own slots,
  not the threads every other host needs;
- idle keep-alive connections are kept per (host, address) and reused: the TLS handshake is
  the largest part of a push.
"""

import heapq
import http.client
import itertools
import select
import socket
import ssl
import threading
import time
from collections import defaultdict
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from requests.certs import where as public_ca_file

from fieldapp.outbound_rule import Target

HOST_SLOTS = 4
HOST_WAIT_S = 0.5
CONNECT_S = 5.0
MAX_ANSWER_BYTES = 64 * 1024
IDLE_PER_KEY = 4


class OutboundError(Exception):
    """The call did not get an answer; retrying later may work."""


class DeadlineExceeded(OutboundError):
    """The whole call took longer than its deadline and was cut."""


class HostBusy(OutboundError):
    """Every slot for this host is taken by sends still running."""


@dataclass
class Reply:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes


def post(target: Target, body: bytes, headers: dict[str, str], *, deadline_s: float) -> Reply:
    """POST `body` to `target` and return the answer, all within `deadline_s` seconds.

    Raises DeadlineExceeded, HostBusy or OutboundError (network trouble); never follows a
    redirect.
    """
    deadline = time.monotonic() + deadline_s
    with _host_slot(_host_header(target)):
        last_error: Exception | None = None
        for address in target.addresses:
            try:
                return _post_to(address, target, body, headers, deadline)
            except _ConnectFailed as exc:  # nothing was sent: the next address may answer
                last_error = exc.__cause__
        if last_error is None:
            raise OutboundError(f"no address to connect to for {target.host}")
        raise OutboundError(
            f"network error: cannot connect ({type(last_error).__name__})"
        ) from last_error


class _ConnectFailed(Exception):
    pass


def _post_to(address: str, target: Target, body: bytes, headers: dict, deadline: float) -> Reply:
    key = (target.scheme, target.host, target.port, address)
    headers = {"Host": _host_header(target), "Content-Length": str(len(body)), **headers}
    with _watchdog.guard(deadline) as guard:
        connection = _idle.take(key)
        if connection is not None:
            guard.watch(connection.sock)
            try:
                return _exchange(connection, key, guard, body, headers)
            except _Stale:
                pass  # the server had closed it while idle; a fresh connection follows
        connection = _Connection(target, address, guard)
        try:
            connection.connect()
        except (OSError, ssl.SSLError) as exc:
            connection.close()
            if guard.past_deadline:
                raise DeadlineExceeded(f"no connection to {target.host} in time") from exc
            raise _ConnectFailed from exc
        try:
            return _exchange(connection, key, guard, body, headers)
        except _Stale as exc:
            raise OutboundError(f"network error: {type(exc.__cause__).__name__}") from exc


class _Stale(Exception):
    pass


def _exchange(connection: "_Connection", key, guard: "_Guard", body: bytes, headers) -> Reply:
    reused = connection.used
    try:
        connection.sock.settimeout(max(0.001, guard.deadline - time.monotonic()))
        connection.request("POST", connection.target.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(MAX_ANSWER_BYTES)
        complete = response.isclosed()
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        connection.close()
        if guard.past_deadline:
            raise DeadlineExceeded(f"{key[1]} did not answer within the deadline") from exc
        if reused and isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError):
            raise _Stale from exc
        raise OutboundError(f"network error: {type(exc).__name__}") from exc
    connection.used = True
    if guard.finish() and complete and not response.will_close:
        _idle.give(key, connection)
    else:
        connection.close()
    return Reply(response.status, response.reason, response.headers, data)


def _host_header(target: Target) -> str:
    return target.origin.split("://", 1)[1]


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection to one vetted address, verified against the host's name."""

    def __init__(self, target: Target, address: str, guard: "_Guard"):
        super().__init__(address, target.port, timeout=CONNECT_S)
        self.target = target
        self.used = False  # True once it carried a request: a failure may mean it went stale
        self._guard = guard

    def connect(self) -> None:
        # A socket of our own to the vetted address: no name is looked up here.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._guard.watch(sock)
        sock.settimeout(min(CONNECT_S, max(0.001, self._guard.deadline - time.monotonic())))
        try:
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.target.scheme == "https":
            # The handshake runs after the watchdog holds the socket: a server trickling its
            # certificate is cut at the deadline too.
            sock = _tls_context().wrap_socket(
                sock, server_hostname=self.target.host, do_handshake_on_connect=False
            )
            self._guard.watch(sock)
            sock.settimeout(max(0.001, self._guard.deadline - time.monotonic()))
            sock.do_handshake()
        self.sock = sock


_tls = threading.local()
_ca_file: str | None = None


def use_ca_file(path: str | None) -> None:
    """Trust the CA certificates in `path` instead of the public ones (tests' own CA)."""
    global _ca_file
    _ca_file = path
    _idle.clear()


def _tls_context() -> ssl.SSLContext:
    context = getattr(_tls, "context", None)
    wanted = _ca_file or public_ca_file()
    if context is None or _tls.cafile != wanted:
        context = ssl.create_default_context(cafile=wanted)
        _tls.context, _tls.cafile = context, wanted
    return context


# --- slots per host -----------------------------------------------------------------------

_slots: dict[str, threading.BoundedSemaphore] = defaultdict(
    lambda: threading.BoundedSemaphore(HOST_SLOTS)
)
_slots_lock = threading.Lock()


@contextmanager
def _host_slot(host: str):
    with _slots_lock:
        slot = _slots[host]
    if not slot.acquire(timeout=HOST_WAIT_S):
        raise HostBusy(f"{HOST_SLOTS} sends to {host} are still running")
    try:
        yield
    finally:
        slot.release()


# --- idle connections ---------------------------------------------------------------------


class _Idle:
    """Idle keep-alive connections per (scheme, host, port, address)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._free: dict[tuple, list[_Connection]] = defaultdict(list)

    def take(self, key) -> _Connection | None:
        while True:
            with self._lock:
                if not self._free[key]:
                    return None
                connection = self._free[key].pop()
            if not _dropped(connection.sock):
                return connection
            connection.close()

    def give(self, key, connection: _Connection) -> None:
        with self._lock:
            if len(self._free[key]) < IDLE_PER_KEY:
                self._free[key].append(connection)
                return
        connection.close()

    def clear(self) -> None:
        with self._lock:
            free, self._free = self._free, defaultdict(list)
        for connections in free.values():
            for connection in connections:
                connection.close()


def _dropped(sock) -> bool:
    """True when an idle connection was closed by the server (readable means EOF or junk)."""
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


_idle = _Idle()


# --- the deadline watchdog ----------------------------------------------------------------


@dataclass(order=True)
class _Guard:
    """The sockets of one call, shut down if the call outlives its deadline."""

    deadline: float
    seq: int
    sockets: list = field(default_factory=list, compare=False)
    expired: bool = field(default=False, compare=False)
    done: bool = field(default=False, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    @property
    def past_deadline(self) -> bool:
        """True once the deadline has passed, whether or not the watchdog got there first
        (a socket timeout set to the time left can fire a moment before it)."""
        return self.expired or time.monotonic() >= self.deadline

    def watch(self, sock) -> None:
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shut(sock)

    def finish(self) -> bool:
        """Stop watching; False when the deadline had already cut the sockets."""
        with self.lock:
            self.done = True
            return not self.expired

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            for sock in self.sockets:
                _shut(sock)


def _shut(sock) -> None:
    # socket.socket.shutdown on the descriptor, not SSLSocket.shutdown (which unwraps TLS
    # and would pull the SSL object from under the thread reading it): the blocked read
    # returns at once with end-of-file.
    with suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread for the whole process that expires guards as their deadlines pass."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[_Guard] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, deadline: float):
        guard = _Guard(deadline, next(self._seq))
        with self._cond:
            heapq.heappush(self._heap, guard)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is guard:
                self._cond.notify()
        try:
            yield guard
        finally:
            guard.finish()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and (
                    self._heap[0].done or self._heap[0].deadline <= time.monotonic()
                ):
                    heapq.heappop(self._heap).expire()
                timeout = self._heap[0].deadline - time.monotonic() if self._heap else None
                self._cond.wait(timeout)


_watchdog = _Watchdog()


def parse_retry_after(value: str | None, now_epoch: float | None = None) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date; None when absent or not
    a sane value. Never inf, NaN or negative: the caller still caps it."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        return float(min(int(value[:12]), 10**9))
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now_epoch = time.time() if now_epoch is None else now_epoch
    return max(0.0, min(when - now_epoch, 10.0**9))
