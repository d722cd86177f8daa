"""The signed feedback webhook, checked by a real local HTTP receiver."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa

from fieldapp import outbound_rule, webhooks
from fieldapp.extensions import db
from fieldapp.models import IntakeToken, OutboxMessage
from fieldapp.outbox import RetryLater
from tests.boarddata import utc, warning
from tests.listeners import Recorder


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
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(app):
    app.config["WEBHOOK_ALLOW_INSECURE_URLS"] = True  # the receiver is on 127.0.0.1
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


# --- the outbound rule for webhook URLs (issue 14 #2 and #11) --------------------------------


@pytest.fixture
def resolve_to(monkeypatch):
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    outbound_rule.forget_resolved()
    yield answers
    outbound_rule.forget_resolved()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1:6379/",
        "https://localhost/hook",
        "https://[::1]:5201/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3:8443/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://user:pw@centre.example.cn/hook",
        "https://centre.example.cn/hook",  # resolves to a private address
        "ftp://centre.example.cn/hook",
        "centre.example.cn/hook",
    ],
)
def test_create_token_refuses_a_webhook_url_the_rule_refuses(runner, resolve_to, url):
    resolve_to["centre.example.cn"] = ["192.168.10.5"]
    result = runner.invoke(args=["create-token", "--name", "centre", "--webhook-url", url])
    assert result.exit_code != 0
    assert "--webhook-url" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IntakeToken)) == 0


def test_create_token_takes_a_public_https_webhook(runner, resolve_to):
    resolve_to["centre.example.cn"] = ["202.96.1.10"]
    url = "https://centre.example.cn/fieldapp/hook"
    result = runner.invoke(args=["create-token", "--name", "centre", "--webhook-url", url])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(IntakeToken.webhook_url)) == url


def test_create_token_takes_a_receiver_on_this_machine_only_when_told(runner, app):
    url = "http://127.0.0.1:8080/hook"
    app.config["WEBHOOK_ALLOW_INSECURE_URLS"] = True
    assert runner.invoke(args=["create-token", "--name", "t", "--webhook-url", url]).exit_code == 0
    app.config["WEBHOOK_ALLOW_NETWORKS"] = ()
    private = "http://10.0.0.8/hook"
    result = runner.invoke(args=["create-token", "--name", "t", "--webhook-url", private])
    assert result.exit_code != 0


def test_an_intranet_receiver_is_admitted_by_naming_its_network(runner, app, resolve_to):
    resolve_to["centre.gov.internal"] = ["10.20.3.4"]
    url = "https://centre.gov.internal/hook"
    assert runner.invoke(args=["create-token", "--name", "t", "--webhook-url", url]).exit_code != 0
    app.config["WEBHOOK_ALLOW_NETWORKS"] = ("10.20.0.0/16",)
    assert runner.invoke(args=["create-token", "--name", "t", "--webhook-url", url]).exit_code == 0


def test_delivery_checks_the_rule_again_and_sends_nothing_to_loopback(resolved, receiver, app):
    """A URL stored before the rule (or by hand) is refused at delivery, for good."""
    _w, _token, message = resolved
    app.config["WEBHOOK_ALLOW_INSECURE_URLS"] = False
    with pytest.raises(webhooks.WebhookRejected, match="outbound rule"):
        webhooks.deliver(message, utc(2026, 11, 25, 2))
    assert receiver.requests == []


def test_delivery_refuses_a_name_that_now_resolves_to_a_private_address(
    resolved, receiver, resolve_to, app
):
    _w, token, message = resolved
    app.config["WEBHOOK_ALLOW_INSECURE_URLS"] = False
    token.webhook_url = f"https://centre.example.cn:{receiver.server.server_port}/hook"
    db.session.commit()
    resolve_to["centre.example.cn"] = ["127.0.0.1"]
    with pytest.raises(webhooks.WebhookRejected):
        webhooks.deliver(message, utc(2026, 11, 25, 2))
    assert receiver.requests == []


def test_a_webhook_redirect_is_not_followed(resolved, receiver, app):
    _w, token, message = resolved
    counter = Receiver()
    hop = Recorder(307, {"Location": counter.url})
    try:
        token.webhook_url = f"{hop.url}/hook"
        db.session.commit()
        with pytest.raises(webhooks.WebhookRejected, match="redirect"):
            webhooks.deliver(message, utc(2026, 11, 25, 2))
    finally:
        hop.close()
        counter.close()
    assert len(hop.requests) == 1 and counter.requests == []
