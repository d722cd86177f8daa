"""The officer's device: duty, position, push subscriptions, receipts, test alert, live stream.

All of these use the session cookie and the `X-CSRFToken` header (CSRFProtect is global),
except the delivery receipt: the service worker cannot read the page's CSRF meta tag, so a
receipt carries the per-message signed token that came inside the push payload instead
(`receipt_token`); with a session and the CSRF header it is accepted without one too.
"""

import base64
import binascii
import math
import time
from typing import Annotated, Literal

import sqlalchemy as sa
from flask import Response, abort, current_app, jsonify, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_limiter import RequestLimit
from flask_login import current_user, login_required
from flask_wtf.csrf import validate_csrf
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fieldapp import clock, devices, duty, live, outbound_rule, push, receipts
from fieldapp.access import roles_required
from fieldapp.api import bp
from fieldapp.api.openapi import operation
from fieldapp.extensions import db, limiter
from fieldapp.live import items as live_items
from fieldapp.live import start as live_start
from fieldapp.models import User
from fieldapp.refusals import Refusal
from fieldapp.validation import MAX_EVENT_ID, parse_id, text

# --- request and response bodies ----------------------------------------------------------


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["on_duty", "off_duty"]


class DutyOut(BaseModel):
    status: str
    changed_at: str


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    accuracy_m: Annotated[float | None, Field(ge=0, le=100_000, allow_inf_nan=False)] = None


class PositionOut(BaseModel):
    position_at: str
    stale_after_s: int


def _b64url_bytes(value: str, size: int | None, first: int | None = None) -> str:
    value = value.strip()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if size is not None and len(raw) != size:
        raise ValueError("wrong length")
    if first is not None and raw[0] != first:
        raise ValueError("not an uncompressed P-256 point")
    return value


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Base64url of an uncompressed P-256 point (65 bytes, 0x04 first) and of 16 bytes.
    p256dh: Annotated[
        text(200, 1), Field(json_schema_extra={"pattern": "^B[A-P][A-Za-z0-9_-]{85}=?$"})
    ]
    auth: Annotated[text(100, 1), Field(json_schema_extra={"pattern": "^[A-Za-z0-9_-]{22}(==)?$"})]

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, value: str) -> str:
        return _b64url_bytes(value, 65, 0x04)

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str) -> str:
        return _b64url_bytes(value, 16)


class SubscriptionIn(BaseModel):
    """A browser's `PushSubscription.toJSON()`."""

    model_config = ConfigDict(extra="ignore")
    # Only the known Web Push services, never an address (outbound_rule.py).
    endpoint: Annotated[
        text(1000, 8),
        Field(json_schema_extra={"pattern": outbound_rule.push_endpoint_pattern()}),
    ]
    keys: SubscriptionKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's own field name


class SubscriptionOut(BaseModel):
    id: int


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    endpoint: text(1000, 1)


class VapidKeyOut(BaseModel):
    key: str


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message_id: Annotated[str, Field(pattern=r"^m[0-9]{1,10}$", description="m<outbox id>")]
    token: text(500) | None = None


class ReceiptOut(BaseModel):
    message_id: str
    recorded: bool


class TestAlertOut(BaseModel):
    message_id: str
    fallback_after_s: int


# --- duty and position --------------------------------------------------------------------


@bp.post("/me/duty")
@roles_required("officer", "auxiliary")
@operation(body=DutyIn, out=DutyOut, answers=(403,))
def set_duty(data: DutyIn):
    """Go on or off duty; only on-duty officers with a fresh position get offers."""
    now = clock.now()
    user = db.session.get(User, current_user.id)
    duty.set_duty(user, data.status, now)
    db.session.commit()
    changed = user.duty_changed_at or now
    return jsonify(DutyOut(status=user.duty_status, changed_at=changed.isoformat()).model_dump())


@bp.post("/me/position")
@roles_required("officer", "auxiliary")
@operation(body=PositionIn, out=PositionOut, answers=(403,))
def set_position(data: PositionIn):
    """Report the device's position

    Sent every few minutes or on a move, so no event per update (it would flood the log and
    the board's feed; dispatch records the distance it used).
    """
    now = clock.now()
    user = db.session.get(User, current_user.id)
    user.lat, user.lon, user.accuracy_m, user.position_at = data.lat, data.lon, data.accuracy_m, now
    stale = user.station.position_stale_s
    db.session.commit()
    return jsonify(PositionOut(position_at=now.isoformat(), stale_after_s=stale).model_dump())


# --- push subscriptions -------------------------------------------------------------------


@bp.get("/push/vapid-public-key")
@operation(out=VapidKeyOut, auth=None)
def vapid_public_key():
    """The server's VAPID public key, for `pushManager.subscribe({applicationServerKey})`."""
    return jsonify(VapidKeyOut(key=push.public_key()).model_dump())


@bp.post("/push/subscriptions")
@login_required
@operation(
    body=SubscriptionIn,
    out=SubscriptionOut,
    status=201,
    links={
        "RemoveSubscription": {
            "operationId": "removeSubscription",
            "requestBody": {"endpoint": "$request.body#/endpoint"},
        }
    },
)
def add_subscription(data: SubscriptionIn):
    """Register this device's push subscription (one per browser; several per user are fine)."""
    agent = request.user_agent.string
    for last_try in (False, True):
        user = db.session.get(User, current_user.id)
        try:
            sub = devices.register_subscription(
                user, data.endpoint, data.keys.p256dh, data.keys.auth, agent, clock.now()
            )
            db.session.commit()
            break
        except Refusal as exc:
            db.session.rollback()
            return jsonify({"errors": exc.errors()}), 422
        except sa.exc.IntegrityError:  # the same endpoint registered at the same moment
            db.session.rollback()
            if last_try:
                raise
    return jsonify(SubscriptionOut(id=sub.id).model_dump()), 201


@bp.delete("/push/subscriptions")
@login_required
@operation(body=EndpointIn, status=204, answers=(404,))
def remove_subscription(data: EndpointIn):
    """Forget one of the current user's subscriptions (on logout or when turning push off)."""
    if not devices.remove_subscription(db.session.get(User, current_user.id), data.endpoint):
        abort(404)
    db.session.commit()
    return "", 204


# --- delivery receipts and the test alert -------------------------------------------------


def _receipt_user_id(data: ReceiptIn) -> int | None:
    if data.token:
        found = push.read_receipt_token(data.token)
        if found is not None and found[0] == data.message_id:
            return found[1]
        return None
    if not current_user.is_authenticated:
        return None
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except Exception:  # flask_wtf raises wtforms' ValidationError for every bad token
        return None
    return current_user.id


@bp.post("/push/receipts")
@operation(body=ReceiptIn, out=ReceiptOut, answers=(404,), csrf_check=False)
def push_receipt(data: ReceiptIn):
    """Delivery receipt from the service worker

    The server now knows the push was delivered. Authenticated by the session with its CSRF
    header, or by the signed `token` that came inside the push payload.
    """
    user_id = _receipt_user_id(data)
    if user_id is None:
        return jsonify({"error": _("Please log in.")}), 401
    recorded = receipts.record_receipt(data.message_id, user_id, clock.now())
    if not recorded:
        abort(404)
    db.session.commit()
    return jsonify(ReceiptOut(message_id=data.message_id, recorded=True).model_dump())


def _test_alert_key() -> str:
    return f"user:{getattr(current_user, 'id', None) or request.remote_addr}"


def _test_alert_too_soon(limit: RequestLimit) -> Response:
    wait_s = max(1, math.ceil(limit.reset_at - time.time()))
    message = _("You asked for a test alert a moment ago. Try again in %(s)d s.", s=wait_s)
    response = jsonify({"error": message, "retry_after_s": wait_s})
    response.status_code = 429
    response.headers["Retry-After"] = str(wait_s)
    return response


@bp.post("/me/test-alert")
@login_required
@limiter.limit(
    lambda: current_app.config["TEST_ALERT_RATE_LIMIT"],
    key_func=_test_alert_key,
    on_breach=_test_alert_too_soon,
)
@operation(
    out=TestAlertOut,
    status=202,
    answers=(429,),
    links={
        "PostPushReceipt": {
            "operationId": "pushReceipt",
            "requestBody": {"message_id": "$response.body#/message_id"},
        }
    },
)
def test_alert():
    """Send a test push to the current user's devices; SMS follows if no receipt comes back."""
    user = db.session.get(User, current_user.id)
    message_id, wait_s = devices.send_test_alert(user, clock.now())
    db.session.commit()
    return jsonify(TestAlertOut(message_id=message_id, fallback_after_s=wait_s).model_dump()), 202


# --- live connection ----------------------------------------------------------------------
# What the open app hears is fieldapp/live/items.py (STREAM_KINDS, CHANGE_KINDS); the stream
# itself is fieldapp/live: one reader per process, fanned out in memory.


def _last_event_id() -> int:
    resumed = parse_id(request.headers.get("Last-Event-ID"), MAX_EVENT_ID)
    return live_start.start_id(resumed, parse_id(request.args.get("last_event_id"), MAX_EVENT_ID))


@bp.get("/me/stream")
@login_required
@operation(headers=("Last-Event-ID",), stream=True, answers=(429,))
def stream():
    """Server-sent events for the current user: new offers, help requests, reassignments.

    Caught up from the event log by id (the SSE id), so a reconnect with Last-Event-ID misses
    nothing and any web process can serve any user; then fed by the process's one event
    reader. Ends after STREAM_SECONDS (the browser reconnects). 429 past the per-user cap.
    """
    user_id = current_user.id
    # An officer of no station hears nothing (station 0 matches no event).
    station_id = current_user.station_id or 0
    # Fixed now: the stream renders in the reader, outside this request.
    locale = str(get_locale())
    config = current_app.config
    return live.response(
        key=("me", user_id),
        station_id=station_id,
        render=lambda facts: live_items.officer_items(facts, user_id, locale),
        last_id=_last_event_id(),
        seconds=float(config.get("STREAM_SECONDS", 55)),
        keepalive=float(config.get("STREAM_KEEPALIVE_S", 15)),
        retry_ms=3000,
    )
