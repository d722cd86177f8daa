"""The SMS fallback gateway: a `log` backend by default, an `http` backend for a real gateway.

Config: SMS_BACKEND ("log" | "http"), SMS_HTTP_URL, SMS_HTTP_TEMPLATE (a JSON document whose
string values may hold `{phone}` and `{text}`; they are filled in after parsing, so a text
with quotes or braces cannot break the JSON). The text itself never holds the resident's
name or phone: it is the push title and body (fraud type, risk, distance).
"""

import json
import logging

import requests
from flask import current_app

from fieldapp.outbox import RetryLater

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0


class SmsError(Exception):
    """A permanent failure (bad configuration, gateway refusing the request)."""


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
    try:
        response = requests.post(url, json=body, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise RetryLater(f"sms gateway unreachable: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        from fieldapp.push import parse_retry_after

        raise RetryLater(
            f"sms gateway answered {response.status_code}",
            after_s=parse_retry_after(response.headers.get("Retry-After")),
        )
    if response.status_code >= 400:
        raise SmsError(f"sms gateway refused: {response.status_code}")
