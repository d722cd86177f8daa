"""The SMS gateway: a `log` backend by default, an `http` backend for a real gateway.

Config: SMS_BACKEND ("log" | "http"), SMS_HTTP_URL, SMS_HTTP_TEMPLATE (a JSON document whose
string values may hold `{phone}` and `{text}`; they are filled in after parsing, so a text
with quotes or braces cannot break the JSON). The text itself never holds the resident's
name or phone: it is the push title and body (fraud type, risk, distance). The gateway's URL
is the administrator's setting, so any address is allowed; the call still has a total
deadline and follows no redirect (outbound_http).
"""

import json
import logging

from flask import current_app

from fieldapp import outbound_http, outbound_rule, outbox
from fieldapp.outbox import RetryLater

log = logging.getLogger(__name__)

DEADLINE_S = 10.0


class SmsError(Exception):
    """A permanent failure (bad configuration, gateway refusing the request)."""


outbox.PERMANENT.append(SmsError)


def _fill(value, phone: str, text: str):
    if isinstance(value, str):
        return value.replace("{phone}", phone).replace("{text}", text)
    if isinstance(value, dict):
        return {k: _fill(v, phone, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, phone, text) for v in value]
    return value


def render(template: str, phone: str, text: str) -> dict:
    """The gateway's JSON body: `template` parsed, then `{phone}`/`{text}` substituted."""
    try:
        parsed = json.loads(template)
    except ValueError as exc:
        raise SmsError("SMS_HTTP_TEMPLATE is not valid JSON") from exc
    return _fill(parsed, phone, text)


def _mask(phone: str) -> str:
    return ("*" * max(0, len(phone) - 4)) + phone[-4:] if phone else ""


def send(phone: str, text: str, *, ref: str = "") -> None:
    """Send `text` to `phone` through the configured backend.

    Raises RetryLater for transient gateway trouble and SmsError for permanent ones.
    """
    backend = current_app.config.get("SMS_BACKEND", "log")
    if backend == "log":
        # The officer's number and the message stay out of the log: a length and a ref only.
        log.info("sms (log backend) ref=%s to=%s chars=%d", ref, _mask(phone), len(text))
        return
    if backend != "http":
        raise SmsError(f"unknown SMS backend {backend!r}")
    url = current_app.config.get("SMS_HTTP_URL") or ""
    if not url.startswith(("https://", "http://")):
        raise SmsError("SMS_HTTP_URL is not set")
    body = render(current_app.config["SMS_HTTP_TEMPLATE"], phone, text)
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        target = outbound_rule.trusted(url)
        reply = outbound_http.post(target, data, headers, deadline_s=DEADLINE_S)
    except outbound_rule.Refused as exc:
        raise SmsError(f"SMS_HTTP_URL is not usable ({exc.reason})") from exc
    except (OSError, outbound_http.OutboundError) as exc:
        raise RetryLater(f"sms gateway unreachable: {exc}") from exc
    if reply.status == 429 or reply.status >= 500:
        raise RetryLater(
            f"sms gateway answered {reply.status}",
            after_s=outbound_http.parse_retry_after(reply.headers.get("Retry-After")),
        )
    if reply.status >= 300:
        raise SmsError(f"sms gateway refused: {reply.status}")
