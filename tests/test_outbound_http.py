"""Issue 14 #1 and #2: every outbound POST has a total deadline, follows no redirect,
connects to the vetted address, and one slow host holds only its own slots.

Servers are on 127.0.0.1 only; TLS uses a CA made for the test run (tests/listeners.py).
The times asserted are bounds a broken deadline would miss by tens of seconds, not speed
measurements.
"""

import socket
import threading
import time

import pytest

from fieldapp import outbound_http
from fieldapp.outbound_rule import Target
from tests.listeners import CertificateAuthority, Recorder, Trickler

DEADLINE_S = 1.5
# The trickled answer is ~45 bytes at one a second: a per-read timeout would wait ~45 s.
SLACK_S = 2.5


@pytest.fixture
def test_ca(tmp_path):
    ca = CertificateAuthority(tmp_path)
    outbound_http.use_ca_file(str(ca.ca_file))
    yield ca
    outbound_http.use_ca_file(None)


def target(port: int, scheme: str = "http", host: str = "127.0.0.1", path: str = "/x") -> Target:
    return Target(scheme, host, port, path, ("127.0.0.1",))


def timed(call):
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def test_a_trickling_http_answer_is_cut_at_the_deadline():
    slow = Trickler(every_s=1.0)
    try:
        error, took = timed(
            lambda: outbound_http.post(target(slow.port), b"{}", {}, deadline_s=DEADLINE_S)
        )
    finally:
        slow.close()
    assert isinstance(error, outbound_http.DeadlineExceeded)
    assert slow.bytes_sent >= 1  # it was answering, just too slowly for any read timeout
    assert took < DEADLINE_S + SLACK_S


def test_a_trickling_https_answer_is_cut_at_the_deadline(test_ca):
    slow = Trickler(every_s=1.0, tls=test_ca.server_context("push.test", "127.0.0.1"))
    try:
        error, took = timed(
            lambda: outbound_http.post(
                target(slow.port, "https", "push.test"), b"{}", {}, deadline_s=DEADLINE_S
            )
        )
    finally:
        slow.close()
    assert isinstance(error, outbound_http.DeadlineExceeded), error
    assert took < DEADLINE_S + SLACK_S


def test_a_server_that_never_finishes_the_tls_handshake_is_cut_too(test_ca):
    silent = Trickler(every_s=30)  # takes the connection, never speaks TLS
    try:
        error, took = timed(
            lambda: outbound_http.post(
                target(silent.port, "https", "push.test"), b"{}", {}, deadline_s=DEADLINE_S
            )
        )
    finally:
        silent.close()
    assert isinstance(error, outbound_http.DeadlineExceeded), error
    assert took < DEADLINE_S + SLACK_S


def test_https_checks_the_certificate_against_the_name(test_ca):
    good = Trickler(every_s=0.001, tls=test_ca.server_context("push.test"))
    try:
        reply = outbound_http.post(target(good.port, "https", "push.test"), b"{}", {}, deadline_s=5)
        assert reply.status == 201
        with pytest.raises(outbound_http.OutboundError, match="SSLCertVerificationError"):
            outbound_http.post(target(good.port, "https", "other.test"), b"{}", {}, deadline_s=5)
    finally:
        good.close()


def test_redirects_are_answers_never_followed():
    counter = Recorder()
    hops = Recorder(307, {"Location": f"{counter.url}/internal/admin"})
    try:
        reply = outbound_http.post(target(hops.port), b'{"a": 1}', {}, deadline_s=5)
        hops.status, hops.headers = 302, {"Location": f"{counter.url}/"}
        again = outbound_http.post(target(hops.port), b"{}", {}, deadline_s=5)
    finally:
        hops.close()
        counter.close()
    assert (reply.status, again.status) == (307, 302)
    assert counter.requests == []


def test_the_connection_goes_to_the_vetted_address_with_the_name_in_host(monkeypatch):
    """No second DNS answer is ever asked for (rebinding): the address is the vetted one."""
    receiver = Recorder(201)

    def no_dns(*args, **kwargs):
        raise AssertionError("resolved again at send time")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    try:
        vetted = Target("http", "push.example.net", receiver.port, "/p?q=1", ("127.0.0.1",))
        reply = outbound_http.post(vetted, b"{}", {"X-A": "b"}, deadline_s=5)
    finally:
        receiver.close()
    assert reply.status == 201
    [request] = receiver.requests
    assert request["headers"]["host"] == f"push.example.net:{receiver.port}"
    assert request["path"] == "/p?q=1" and request["headers"]["x-a"] == "b"


def test_a_slow_host_holds_its_own_slots_only():
    slow, quick = Trickler(every_s=5), Recorder(201)
    results = []

    def hold():
        try:
            outbound_http.post(target(slow.port), b"{}", {}, deadline_s=3)
        except outbound_http.OutboundError as exc:
            results.append(type(exc).__name__)

    holders = [threading.Thread(target=hold) for _ in range(outbound_http.HOST_SLOTS)]
    try:
        for thread in holders:
            thread.start()
        deadline = time.monotonic() + 5
        while slow.connections < outbound_http.HOST_SLOTS and time.monotonic() < deadline:
            time.sleep(0.01)
        # Every slot of the slow host is taken: one more waits briefly, then gives up ...
        with pytest.raises(outbound_http.HostBusy):
            outbound_http.post(target(slow.port), b"{}", {}, deadline_s=3)
        # ... while another host is served at once.
        assert outbound_http.post(target(quick.port), b"{}", {}, deadline_s=3).status == 201
        for thread in holders:
            thread.join(10)
    finally:
        slow.close()
        quick.close()
    assert results == ["DeadlineExceeded"] * outbound_http.HOST_SLOTS


def test_a_closed_port_is_a_network_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(outbound_http.OutboundError, match="network error"):
        outbound_http.post(target(port), b"{}", {}, deadline_s=3)
