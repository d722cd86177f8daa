"""Web Push: building the payload a phone shows, and sending it through pywebpush.

The payload follows the contract: `{"v": 1, "kind", "message_id", "warning_id", "title",
"body", "url"}`, plus `actions` (button labels, already translated), `receipt_token` (lets the
service worker post its delivery receipt without a CSRF token) and `tag`. The lock-screen text
never carries the resident's name or phone: fraud type, risk level and distance only.

Sending raises `outbox.RetryLater` for what may work later (429, 5xx, network errors) and
returns `GONE` for a subscription the push service no longer knows (404/410), which the
caller deletes.
"""

import json
import logging
import random
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from pywebpush import WebPushException, webpush

from fieldapp import i18n, labels, vapid
from fieldapp.models import Offer, PushSubscription, User, Warning
from fieldapp.outbox import RetryLater

log = logging.getLogger(__name__)

PUSH_KINDS = ("offer", "help", "reminder", "reassigned")
DEFAULT_LOCALE = "zh_CN"
SEND_TIMEOUT_S = 10.0
# Backoff for retries: 5 s, 10 s, 20 s ... capped at 15 minutes, each with ±25 % jitter.
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 900.0
RECEIPT_SALT = "push-receipt"

SENT = "sent"
GONE = "gone"
REJECTED = "rejected"

_local = threading.local()
_keys: dict[str, object] = {}
_keys_lock = threading.Lock()


def backoff_s(attempts: int, retry_after_s: float | None = None) -> float:
    """Seconds to wait before attempt `attempts + 1`: exponential with jitter, never sooner
    than the push service's Retry-After."""
    exp = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))
    delay = exp * random.uniform(0.75, 1.25)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delta-seconds form; an HTTP date counts as unknown)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        from email.utils import parsedate_to_datetime

        from fieldapp import clock

        try:
            return max(0.0, (parsedate_to_datetime(value) - clock.now()).total_seconds())
        except (TypeError, ValueError):
            return None


def vapid_key():
    """The server's VAPID key, loaded (or made) once per key file."""
    path = current_app.config["VAPID_PRIVATE_KEY_FILE"]
    with _keys_lock:
        if path not in _keys:
            _keys[path] = vapid.load_or_create(path)
        return _keys[path]


def public_key() -> str:
    return vapid.public_key_b64(vapid_key())


def _session() -> requests.Session:
    # One keep-alive session per thread: the TLS handshake to the push service is the
    # largest part of a send, and requests sessions are not thread-safe.
    if getattr(_local, "session", None) is None:
        _local.session = requests.Session()
    return _local.session


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
    """Where Open takes the officer: the warning's page if the field pages have one."""
    adapter = current_app.url_map.bind("")
    if warning_id is not None:
        for endpoint in ("field.warning", "field.show_warning", "field.warning_detail"):
            if endpoint in current_app.view_functions:
                return adapter.build(endpoint, {"warning_id": warning_id})
        return adapter.build("field.index") + f"#w{warning_id}"
    return adapter.build("field.index")


def _distance_text(distance_m: float | None) -> str:
    if distance_m is None:
        return ""
    if distance_m < 1000:
        return _("%(m)d m away", m=round(distance_m))
    return _("%(km).1f km away", km=distance_m / 1000)


def texts(push_kind: str, warning: Warning | None, offer: Offer | None, test: bool = False):
    """(title, body) in the current locale. Only codes and numbers: never a name or phone."""
    if test or warning is None:
        if test:
            return _("Test alert"), _("Alerts reach this device.")
        return _("Fieldapp"), ""
    fraud = labels.label(labels.FRAUD_TYPES, warning.fraud_type)
    risk = labels.label(labels.RISK_LEVELS, warning.risk_level)
    distance = _distance_text(offer.distance_m if offer is not None else None)
    body = " · ".join(part for part in (risk, distance) if part)
    if push_kind == "offer":
        return _("New warning: %(fraud)s", fraud=fraud), body
    if push_kind == "help":
        return _("Help requested: %(fraud)s", fraud=fraud), body
    if push_kind == "reassigned":
        return _("Warning reassigned"), _(
            "%(fraud)s (%(risk)s) is now with a colleague.", fraud=fraud, risk=risk
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
    deletes the subscription), REJECTED for another 4xx (bad request, payload too large:
    retrying cannot help). Raises RetryLater for 429, 5xx and network errors, honouring
    Retry-After.
    """
    headers = {"Urgency": urgency}
    if topic:
        # RFC 8030 §5.4: a newer message with the same topic replaces an undelivered one.
        headers["Topic"] = topic
    endpoint = urlparse(sub.endpoint)
    claims = {
        "sub": current_app.config["VAPID_SUBJECT"],
        "aud": f"{endpoint.scheme}://{endpoint.netloc}",
    }
    try:
        webpush(
            subscription_info(sub),
            data=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            vapid_private_key=vapid_key(),
            vapid_claims=claims,
            ttl=max(0, int(ttl)),
            headers=headers,
            timeout=SEND_TIMEOUT_S,
            requests_session=_session(),
        )
    except WebPushException as exc:
        response = exc.response
        code = response.status_code if response is not None else None
        if code in (404, 410):
            return SendResult(GONE, code)
        if code is None or code == 429 or code >= 500:
            # A requests Response is falsy for 4xx/5xx: compare with None.
            header = response.headers.get("Retry-After") if response is not None else None
            retry_after = parse_retry_after(header)
            raise RetryLater(f"push service answered {code}", after_s=retry_after) from exc
        log.warning("push rejected with %s for subscription %s", code, sub.id)
        return SendResult(REJECTED, code)
    except requests.RequestException as exc:
        # Drop the pooled connection; it may be the broken part.
        _local.session = None
        raise RetryLater(f"network error: {type(exc).__name__}") from exc
    return SendResult(SENT, 201)
