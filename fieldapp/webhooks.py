"""Feedback to the anti-fraud centre: signed webhooks sent from the outbox.

The body is the same feedback JSON as `GET /api/v1/warnings/<id>` plus `"event"`
("resolved" or "amended"). The receiver checks

    X-Fieldapp-Signature: sha256=<hex HMAC-SHA256(webhook_secret, timestamp + "." + raw body)>
    X-Fieldapp-Timestamp: <unix seconds>

and should refuse timestamps more than a few minutes old (replays). Network errors, the
deadline, 5xx and 429 are retried by the outbox (RetryLater); any other 4xx, a redirect (never
followed) or a URL the outbound rule refuses (outbound_rule.webhook_rule: public https hosts
only, checked again at every delivery) is a permanent failure.
"""

import hashlib
import hmac
import json
from datetime import datetime

from fieldapp import outbound_http, outbound_rule, outbox
from fieldapp.extensions import db
from fieldapp.feedback import feedback
from fieldapp.models import OutboxMessage, Warning
from fieldapp.outbox import RetryLater

SIGNATURE_HEADER = "X-Fieldapp-Signature"
TIMESTAMP_HEADER = "X-Fieldapp-Timestamp"
DEADLINE_S = 10.0


class WebhookRejected(Exception):
    """The receiver refused the message for good (a 4xx other than 429): do not retry."""


outbox.PERMANENT.append(WebhookRejected)


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
        target = outbound_rule.connectable(token.webhook_url, outbound_rule.webhook_rule())
        reply = outbound_http.post(target, body, headers, deadline_s=DEADLINE_S)
    except outbound_rule.Refused as exc:
        raise WebhookRejected(f"webhook URL refused by the outbound rule ({exc.reason})") from exc
    except (OSError, outbound_http.OutboundError) as exc:
        raise RetryLater(f"webhook: {exc}") from exc
    status = reply.status
    if status == 429 or status >= 500:
        after_s = outbound_http.parse_retry_after(reply.headers.get("Retry-After"))
        raise RetryLater(f"webhook answered {status}", after_s=after_s)
    if status >= 400:
        raise WebhookRejected(f"webhook refused with {status}; not retried")
    if status >= 300:
        raise WebhookRejected(f"webhook answered a redirect ({status}); not followed")
