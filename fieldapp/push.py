"""Web Push: the message a phone shows, and sending it to one device through pywebpush.

The payload follows the contract: `{"v": 1, "kind", "message_id", "warning_id", "title",
"body", "url"}`, plus `actions` (button labels, already translated), `receipt_token` (lets the
service worker post its delivery receipt without a CSRF token) and `tag`. The lock-screen text
never carries the resident's name or phone: fraud type, risk level and distance only.

pywebpush encrypts and signs; the HTTP request itself goes through outbound_http (the
endpoint vetted again by outbound_rule, a total deadline, no redirects). Sending raises
`outbox.RetryLater` for what may work later (429, 5xx, network errors, the deadline) and
returns GONE for a subscription the push service no longer knows (404/410), which the caller
deletes, and REJECTED for one it refuses or the rule no longer admits.
"""

import json
import logging
import threading
from dataclasses import dataclass

import requests
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from pywebpush import WebPushException, webpush
from requests.structures import CaseInsensitiveDict

from fieldapp import i18n, labels, outbound_http, outbound_rule, vapid
from fieldapp.models import Offer, PushSubscription, User, Warning
from fieldapp.outbox import RetryLater

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "zh_CN"
# Connect, TLS, request and the whole answer: one push service can hold a send this long.
SEND_DEADLINE_S = 10.0
RECEIPT_SALT = "push-receipt"

SENT = "sent"
GONE = "gone"
REJECTED = "rejected"

_keys: dict[str, object] = {}
_keys_lock = threading.Lock()


def vapid_key():
    """The server's VAPID key, loaded (or made) once per key file."""
    path = current_app.config["VAPID_PRIVATE_KEY_FILE"]
    with _keys_lock:
        if path not in _keys:
            _keys[path] = vapid.load_or_create(path)
        return _keys[path]


def public_key() -> str:
    return vapid.public_key_b64(vapid_key())


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=RECEIPT_SALT)


def receipt_token(message_id: str, user_id: int) -> str:
    """A token the service worker sends back with its receipt, proving which message it got."""
    return _serializer().dumps({"m": message_id, "u": user_id})


def read_receipt_token(token: str) -> tuple[str, int] | None:
    """(message_id, user_id) from a receipt token, or None when it is forged or malformed."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("m"), str):
        return None
    if not isinstance(data.get("u"), int):
        return None
    return data["m"], data["u"]


def warning_path(warning_id: int | None) -> str:
    """Where Open takes the officer: the warning's page, else the field home."""
    # Built without a request: the worker sends pushes too.
    adapter = current_app.url_map.bind("")
    if warning_id is None:
        return adapter.build("field.index")
    return adapter.build("field.warning", {"warning_id": warning_id})


def texts(push_kind: str, warning: Warning | None, offer: Offer | None, test: bool = False):
    """(title, body) in the current locale. Only codes and numbers: never a name or phone."""
    if test or warning is None:
        if test:
            return _("Test alert"), _("Alerts reach this device.")
        return _("Fieldapp"), ""
    fraud = labels.label(labels.FRAUD_TYPES, warning.fraud_type)
    risk = labels.label(labels.RISK_LEVELS, warning.risk_level)
    distance = labels.distance_away(offer.distance_m if offer is not None else None)
    body = " · ".join(part for part in (risk, distance) if part)
    if push_kind == "offer":
        return _("New warning: %(fraud)s", fraud=fraud), body
    if push_kind == "help":
        return _("Help requested: %(fraud)s", fraud=fraud), body
    if push_kind == "reassigned":
        return _("Warning reassigned"), _(
            "%(fraud)s (%(risk)s) is now with a colleague.", fraud=fraud, risk=risk
        )
    if push_kind == "taken":
        return _("Accepted by another officer"), _(
            "%(fraud)s (%(risk)s) was accepted by a colleague first.", fraud=fraud, risk=risk
        )
    if warning.status == "unassigned":
        return _("Nobody took a warning"), _(
            "%(fraud)s (%(risk)s) is waiting on the board.", fraud=fraud, risk=risk
        )
    return _("Reminder: %(fraud)s", fraud=fraud), body


def build_payload(
    message_id: str,
    push_kind: str,
    user: User,
    warning: Warning | None = None,
    offer: Offer | None = None,
    *,
    test: bool = False,
) -> dict:
    """The decrypted JSON of one push message, in `user`'s language."""
    with force_locale(i18n.locale(user.locale or DEFAULT_LOCALE)):
        title, body = texts(push_kind, warning, offer, test=test)
        actions = {"open": _("Open")}
        if push_kind in ("offer", "help"):
            actions["accept"] = _("Accept")
    return {
        "v": 1,
        "kind": push_kind,
        "message_id": message_id,
        "warning_id": warning.id if warning is not None else None,
        "title": title,
        "body": body,
        "url": warning_path(warning.id if warning is not None else None),
        "actions": actions,
        # Same tag for the same warning: a repeat replaces the notification instead of
        # stacking a second one.
        "tag": f"w{warning.id}" if warning is not None else message_id,
        "receipt_token": receipt_token(message_id, user.id),
        # An internal id, not personal data: the offline queue files entries per user.
        "user_id": user.id,
    }


@dataclass(frozen=True)
class SendResult:
    status: str  # SENT, GONE or REJECTED
    code: int | None = None


def subscription_info(sub: PushSubscription) -> dict:
    return {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}


class _Transport:
    """What pywebpush posts through: the vetted target, a total deadline, no redirects."""

    def __init__(self, target: outbound_rule.Target):
        self.target = target

    def post(self, url: str, *, data: bytes, headers, timeout: float) -> requests.Response:
        reply = outbound_http.post(self.target, data or b"", dict(headers), deadline_s=timeout)
        response = requests.Response()
        response.status_code, response.reason = reply.status, reply.reason
        response.headers = CaseInsensitiveDict(reply.headers.items())
        response._content = reply.body  # a finished answer, as requests builds it
        response.url = url
        return response


def send(
    sub: PushSubscription,
    payload: dict,
    *,
    ttl: int,
    urgency: str = "normal",
    topic: str | None = None,
) -> SendResult:
    """Encrypt and send `payload` to one subscription.

    Returns SENT when the push service accepted it (201/202), GONE for 404/410 (the caller
    deletes the subscription), REJECTED for another 4xx or a 3xx (never followed) or an
    endpoint the rule no longer admits (retrying cannot help). Raises RetryLater for 429,
    5xx, network errors and the deadline, honouring Retry-After.
    """
    try:
        target = outbound_rule.connectable(sub.endpoint, outbound_rule.push_rule())
    except outbound_rule.Refused as exc:
        log.warning("push endpoint of subscription %s refused: %s", sub.id, exc.reason)
        return SendResult(REJECTED)
    except OSError as exc:
        raise RetryLater("network error: the push service does not resolve") from exc
    headers = {"Urgency": urgency}
    if topic:
        # RFC 8030 §5.4: a newer message with the same topic replaces an undelivered one.
        headers["Topic"] = topic
    claims = {"sub": current_app.config["VAPID_SUBJECT"], "aud": target.origin}
    try:
        webpush(
            subscription_info(sub),
            data=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            vapid_private_key=vapid_key(),
            vapid_claims=claims,
            ttl=max(0, int(ttl)),
            headers=headers,
            timeout=SEND_DEADLINE_S,
            requests_session=_Transport(target),
        )
    except WebPushException as exc:
        return _refusal(sub, exc.response)
    except outbound_http.OutboundError as exc:
        raise RetryLater(f"push service: {exc}") from exc
    return SendResult(SENT, 201)


def _refusal(sub: PushSubscription, response: requests.Response | None) -> SendResult:
    # A requests Response is falsy for 4xx/5xx: compare with None.
    code = response.status_code if response is not None else None
    if code in (404, 410):
        return SendResult(GONE, code)
    if code is None or code == 429 or code >= 500:
        header = response.headers.get("Retry-After") if response is not None else None
        raise RetryLater(
            f"push service answered {code}",
            after_s=outbound_http.parse_retry_after(header),
        )
    log.warning("push rejected with %s for subscription %s", code, sub.id)
    return SendResult(REJECTED, code)
