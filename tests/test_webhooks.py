"""The signed feedback webhook, checked by a real local HTTP receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from fieldapp import webhooks
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage
from fieldapp.outbox import RetryLater
from tests.boarddata import utc, warning


class Receiver:
    """A tiny HTTP server answering each POST with the next status of `statuses`."""

    def __init__(self):
        self.statuses: list[int] = [200]
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def resolved(make, receiver):
    station = make.station("A")
    officer = make.user(station, "officer", "o1", display_name="王警官")
    token, _plain = make.token(station, webhook_url=receiver.url)
    w = warning(
        make,
        station,
        utc(2026, 11, 25, 1),
        owner=officer,
        accept_s=20,
        contact_s=60,
        outcome="persuaded",
        amount=10000,
        app=True,
        attempts=[("phone", True)],
        token_id=token.id,
    )
    message = OutboxMessage(kind="webhook", payload={"warning_id": w.id, "event": "resolved"})
    db.session.add(message)
    db.session.commit()
    return w, token, message


def test_receiver_verifies_the_signature(resolved, receiver):
    w, token, message = resolved
    now = utc(2026, 11, 25, 2)
    webhooks.deliver(message, now)
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    timestamp = headers["X-Fieldapp-Timestamp"]
    assert timestamp == str(int(now.timestamp()))
    signature = headers["X-Fieldapp-Signature"]
    assert signature.startswith("sha256=")
    # The receiver's check, done with the shared secret only.
    assert webhooks.verify(token.webhook_secret, timestamp, body, signature)
    assert not webhooks.verify("wrong-secret", timestamp, body, signature)
    assert not webhooks.verify(token.webhook_secret, str(int(timestamp) + 1), body, signature)
    assert not webhooks.verify(token.webhook_secret, timestamp, body + b" ", signature)
    data = json.loads(body)
    assert data["event"] == "resolved"
    assert data["id"] == w.id
    assert data["outcome"]["outcome"] == "persuaded"
    assert data["attempts"][0]["channel"] == "phone"
    assert "person_name" not in data and "张三" not in body.decode()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_rate_limits_are_retried(resolved, receiver, status):
    _w, _token, message = resolved
    receiver.statuses = [status, 200]
    with pytest.raises(RetryLater):
        webhooks.deliver(message, utc(2026, 11, 25, 2))
    webhooks.deliver(message, utc(2026, 11, 25, 2, 1))  # the retry goes through
    assert len(receiver.requests) == 2


def test_network_error_is_retried(resolved, receiver):
    _w, token, message = resolved
    receiver.close()  # nobody listens any more
    with pytest.raises(RetryLater):
        webhooks.deliver(message, utc(2026, 11, 25, 2))


def test_client_error_is_permanent(resolved, receiver):
    _w, _token, message = resolved
    receiver.statuses = [400]
    with pytest.raises(webhooks.WebhookRejected):
        webhooks.deliver(message, utc(2026, 11, 25, 2))
    assert not isinstance(webhooks.WebhookRejected("x"), RetryLater)


def test_no_webhook_url_sends_nothing(make, receiver):
    station = make.station("A")
    officer = make.user(station, "officer")
    token, _plain = make.token(station)  # no webhook
    w = warning(
        make, station, utc(2026, 11, 25, 1), owner=officer, outcome="not_fraud", token_id=token.id
    )
    message = OutboxMessage(kind="webhook", payload={"warning_id": w.id, "event": "resolved"})
    db.session.add(message)
    db.session.commit()
    webhooks.deliver(message, utc(2026, 11, 25, 2))
    assert receiver.requests == []
