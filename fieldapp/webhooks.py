"""Feedback to the anti-fraud centre: signed webhooks sent from the outbox.

The body is the same feedback JSON as `GET /api/v1/warnings/<id>` plus `"event"`
("resolved" or "amended"). The receiver checks

    X-Fieldapp-Signature: sha256=<hex HMAC-SHA256(webhook_secret, timestamp + "." + raw body)>
    X-Fieldapp-Timestamp: <unix seconds>

and should refuse timestamps more than a few minutes old (replays). Network errors, 5xx and
429 are retried by the outbox (RetryLater); any other 4xx is a permanent failure.
"""

import hashlib
import hmac
import json
from datetime import datetime

import requests

from fieldapp.api.intake import feedback
from fieldapp.extensions import db
from fieldapp.models import OutboxMessage, Warning
from fieldapp.outbox import RetryLater

SIGNATURE_HEADER = "X-Fieldapp-Signature"
TIMESTAMP_HEADER = "X-Fieldapp-Timestamp"
TIMEOUT_S = 10


class WebhookRejected(Exception):
    """The receiver refused the message for good (a 4xx other than 429): do not retry."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), header or "")


def build_body(warning: Warning, event: str) -> bytes:
    """The raw JSON bytes sent (and signed)."""
    body = {"event": event, **feedback(warning)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def deliver(message: OutboxMessage, now: datetime) -> None:
    """Send one outbox "webhook" message; returns quietly when there is nothing to send."""
    payload = message.payload or {}
    warning = db.session.get(Warning, payload.get("warning_id"))
    if warning is None or warning.token is None or not warning.token.webhook_url:
        return
    token = warning.token
    body = build_body(warning, payload.get("event", "resolved"))
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Fieldapp-Webhook/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(token.webhook_secret or "", timestamp, body),
        "X-Fieldapp-Delivery": str(message.id or ""),
    }
    try:
        response = requests.post(
            token.webhook_url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise RetryLater(f"webhook network error: {type(exc).__name__}") from exc
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        after_s = float(retry_after) if retry_after.isdigit() else None
        raise RetryLater(f"webhook answered {status}", after_s=after_s)
    if status >= 400:
        raise WebhookRejected(f"webhook refused with {status}; not retried")
    if status >= 300:
        raise WebhookRejected(f"webhook answered a redirect ({status}); not followed")
