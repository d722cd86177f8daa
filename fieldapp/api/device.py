"""The officer's device: duty, position, push subscriptions, receipts, test alert, live stream.

All of these use the session cookie and the `X-CSRFToken` header (CSRFProtect is global),
except the delivery receipt: the service worker cannot read the page's CSRF meta tag, so a
receipt carries the per-message signed token that came inside the push payload instead
(`receipt_token`); with a session and the CSRF header it is accepted without one too.
"""

import base64
import binascii
import json
import time
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlparse

import sqlalchemy as sa
from flask import Response, abort, current_app, jsonify, request, stream_with_context
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import validate_csrf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fieldapp import clock, dispatch, events, i18n, outbox, push
from fieldapp.access import roles_required
from fieldapp.api import bp
from fieldapp.api.errors import field_errors
from fieldapp.extensions import csrf, db
from fieldapp.models import Event, Offer, OutboxMessage, PushSubscription, User, Warning

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
    p256dh: Annotated[str, Field(min_length=1, max_length=200)]
    auth: Annotated[str, Field(min_length=1, max_length=100)]

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
    endpoint: Annotated[str, Field(min_length=8, max_length=1000)]
    keys: SubscriptionKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's own field name


class SubscriptionOut(BaseModel):
    id: int


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, Field(min_length=1, max_length=1000)]


class VapidKeyOut(BaseModel):
    key: str


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message_id: Annotated[str, Field(min_length=1, max_length=64)]
    token: Annotated[str | None, Field(max_length=500)] = None


class ReceiptOut(BaseModel):
    message_id: str
    recorded: bool


class TestAlertOut(BaseModel):
    message_id: str
    fallback_after_s: int


def _parse(model: type[BaseModel]):
    try:
        return model.model_validate_json(request.get_data() or b"{}"), None
    except ValidationError as exc:
        return None, (jsonify({"errors": field_errors(exc)}), 422)


def _endpoint_problem(endpoint: str) -> str | None:
    """The server will POST to this URL: https only (plain http for loopback when allowed)."""
    url = urlparse(endpoint)
    if url.scheme == "https" and url.hostname:
        return None
    if (
        url.scheme == "http"
        and url.hostname in ("127.0.0.1", "localhost", "::1")
        and current_app.config.get("PUSH_ALLOW_INSECURE_ENDPOINTS")
    ):
        return None
    return _("Must be an https:// push service address.")


# --- duty and position --------------------------------------------------------------------


@bp.post("/me/duty")
@roles_required("officer", "auxiliary")
def set_duty():
    """Go on or off duty; only on-duty officers with a fresh position get offers."""
    data, error = _parse(DutyIn)
    if error:
        return error
    now = clock.now()
    user = db.session.get(User, current_user.id)
    dispatch.set_duty(user, data.status, now)
    db.session.commit()
    changed = user.duty_changed_at or now
    return jsonify(DutyOut(status=user.duty_status, changed_at=changed.isoformat()).model_dump())


@bp.post("/me/position")
@roles_required("officer", "auxiliary")
def set_position():
    """The phone's position; sent every few minutes or on a move, so no event per update
    (it would flood the log and the board's feed; dispatch records the distance it used)."""
    data, error = _parse(PositionIn)
    if error:
        return error
    now = clock.now()
    user = db.session.get(User, current_user.id)
    user.lat, user.lon, user.accuracy_m, user.position_at = data.lat, data.lon, data.accuracy_m, now
    stale = user.station.position_stale_s
    db.session.commit()
    return jsonify(PositionOut(position_at=now.isoformat(), stale_after_s=stale).model_dump())


# --- push subscriptions -------------------------------------------------------------------


@bp.get("/push/vapid-public-key")
def vapid_public_key():
    """The server's VAPID public key, for `pushManager.subscribe({applicationServerKey})`."""
    return jsonify(VapidKeyOut(key=push.public_key()).model_dump())


@bp.post("/push/subscriptions")
@login_required
def add_subscription():
    """Register this device's push subscription (one per browser; several per user are fine)."""
    data, error = _parse(SubscriptionIn)
    if error:
        return error
    problem = _endpoint_problem(data.endpoint)
    if problem:
        return jsonify({"errors": {"endpoint": problem}}), 422
    sub = db.session.scalar(
        sa.select(PushSubscription).where(PushSubscription.endpoint == data.endpoint)
    )
    if sub is None:
        sub = PushSubscription(endpoint=data.endpoint)
        db.session.add(sub)
    # A browser that changed hands now belongs to whoever registered it last.
    sub.user_id = current_user.id
    sub.p256dh, sub.auth = data.keys.p256dh, data.keys.auth
    sub.user_agent = (request.user_agent.string or "")[:300] or None
    sub.failure_count = 0
    db.session.flush()
    events.record("push_subscribed", actor=current_user, subscription_id=sub.id)
    db.session.commit()
    return jsonify(SubscriptionOut(id=sub.id).model_dump()), 201


@bp.delete("/push/subscriptions")
@login_required
def remove_subscription():
    """Forget one of the current user's subscriptions (on logout or when turning push off)."""
    data, error = _parse(EndpointIn)
    if error:
        return error
    sub = db.session.scalar(
        sa.select(PushSubscription).where(
            PushSubscription.endpoint == data.endpoint, PushSubscription.user_id == current_user.id
        )
    )
    if sub is None:
        abort(404)
    events.record("push_unsubscribed", actor=current_user, subscription_id=sub.id)
    db.session.delete(sub)
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


def record_receipt(message_id: str, user_id: int, now) -> bool:
    """Mark the message `message_id` (sent to `user_id`) delivered; False if it is not theirs."""
    from fieldapp.worker import outbox_id_of

    outbox_id = outbox_id_of(message_id)
    message = db.session.get(OutboxMessage, outbox_id) if outbox_id is not None else None
    if message is None or message.kind != "push" or message.payload.get("user_id") != user_id:
        return False
    offer_id = message.payload.get("offer_id")
    if offer_id:
        done = db.session.execute(
            sa.update(Offer)
            .where(Offer.id == offer_id, Offer.officer_id == user_id, Offer.delivered_at.is_(None))
            .values(delivered_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done:
            offer = db.session.get(Offer, offer_id)
            events.record(
                "delivered",
                warning=offer.warning,
                offer_id=offer_id,
                officer_id=user_id,
                channel="push",
            )
        return True
    # Not written into the outbox row: the worker may still be finishing it and would
    # overwrite the payload. The event is what the test alert's receipt check looks for.
    user = db.session.get(User, user_id)
    already = db.session.scalars(
        sa.select(Event.data).where(
            Event.kind == "delivered",
            Event.actor_id == user_id,
            Event.created_at >= message.created_at,
        )
    ).all()
    if not any(data.get("message_id") == message_id for data in already):
        events.record("delivered", actor=user, message_id=message_id, channel="push")
    return True


@bp.post("/push/receipts")
@csrf.exempt
def push_receipt():
    """The service worker got a push: the server now knows it was delivered."""
    data, error = _parse(ReceiptIn)
    if error:
        return error
    user_id = _receipt_user_id(data)
    if user_id is None:
        return jsonify({"error": _("Please log in.")}), 401
    recorded = record_receipt(data.message_id, user_id, clock.now())
    if not recorded:
        abort(404)
    db.session.commit()
    return jsonify(ReceiptOut(message_id=data.message_id, recorded=True).model_dump())


@bp.post("/me/test-alert")
@login_required
def test_alert():
    """Send a test push to the current user's devices; SMS follows if no receipt comes back."""
    now = clock.now()
    user = db.session.get(User, current_user.id)
    message = outbox.enqueue("push", {"user_id": user.id, "push_kind": "reminder", "test": True})
    db.session.flush()
    wait_s = user.station.receipt_timeout_s
    outbox.enqueue(
        "receipt_check",
        {"push_outbox_id": message.id, "user_id": user.id},
        due_at=now + timedelta(seconds=wait_s),
    )
    events.record("test_alert", actor=user, message_id=f"m{message.id}")
    db.session.commit()
    out = TestAlertOut(message_id=f"m{message.id}", fallback_after_s=wait_s)
    return jsonify(out.model_dump()), 202


# --- live connection ----------------------------------------------------------------------

STREAM_KINDS = {"offered": "offer", "reassigned": "reassigned", "help_requested": "help"}


def _stream_item(event: Event, user: User) -> dict | None:
    """What the open app hears about `event`, if it concerns `user`."""
    data = event.data or {}
    kind = STREAM_KINDS.get(event.kind)
    if kind == "offer" and data.get("officer_id") != user.id:
        return None
    if kind == "reassigned" and data.get("from_user_id") != user.id:
        return None
    if kind == "help" and (event.actor_id == user.id or user.duty_status != "on_duty"):
        return None
    if kind is None:
        return None
    warning = db.session.get(Warning, event.warning_id) if event.warning_id else None
    offer = db.session.get(Offer, data["offer_id"]) if data.get("offer_id") else None
    if kind == "offer" and (offer is None or offer.status != "pending"):
        return None
    title, body = push.texts(kind, warning, offer)
    return {
        "kind": kind,
        "warning_id": event.warning_id,
        "offer_id": offer.id if offer else None,
        "title": title,
        "body": body,
        "url": push.warning_path(event.warning_id),
    }


def _last_event_id() -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
    if raw.isdigit():
        return int(raw)
    # A fresh connection starts from now: what is already pending is on the page.
    return db.session.scalar(sa.select(sa.func.max(Event.id))) or 0


@bp.get("/me/stream")
@login_required
def stream():
    """Server-sent events for the current user: new offers, help requests, reassignments.

    Read from the event log by id (the SSE id), so a reconnect with Last-Event-ID catches up
    and any web process can serve any user. The response ends after STREAM_SECONDS (the
    browser reconnects), so a gunicorn thread is never held for long.
    """
    user_id = current_user.id
    station_id = current_user.station_id
    # Fixed now: inside the generator current_user's row may no longer be attached.
    locale = str(get_locale())
    last_id = _last_event_id()
    db.session.rollback()
    duration = float(current_app.config.get("STREAM_SECONDS", 55))
    poll = float(current_app.config.get("STREAM_POLL_S", 1.0))
    keepalive = float(current_app.config.get("STREAM_KEEPALIVE_S", 15))

    def generate():
        nonlocal last_id
        started = last_ping = time.monotonic()
        yield "retry: 3000\n\n"
        while True:
            user = db.session.get(User, user_id)
            rows = db.session.scalars(
                sa.select(Event)
                .where(Event.id > last_id, Event.station_id == station_id)
                .where(Event.kind.in_(list(STREAM_KINDS)))
                .order_by(Event.id)
                .limit(100)
            ).all()
            out = []
            for event in rows:
                last_id = event.id
                with force_locale(i18n.locale(locale)):
                    item = _stream_item(event, user)
                if item is not None:
                    out.append(
                        f"id: {event.id}\nevent: {item['kind']}\ndata: "
                        f"{json.dumps(item, ensure_ascii=False)}\n\n"
                    )
            # End the read transaction: no connection sits idle in a transaction.
            db.session.rollback()
            if out:
                yield "".join(out)
                last_ping = time.monotonic()
            elif rows:
                # Move the client's Last-Event-ID past events that were not for it.
                yield f"id: {last_id}\n: skip\n\n"
            now = time.monotonic()
            if now - started >= duration:
                return
            if now - last_ping >= keepalive:
                yield ": keep-alive\n\n"
                last_ping = now
            time.sleep(poll)

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


# --- OpenAPI ------------------------------------------------------------------------------


def _document() -> None:
    from fieldapp.api import openapi
    from fieldapp.api.schemas import ErrorBody

    errors = openapi.json_body(ErrorBody, "bad input, one message per field")
    session = [{"session": []}]

    def op(path, method, summary, op_id, body=None, ok=None, ok_code="200", extra=None):
        responses = {"401": {"description": "not logged in"}, "422": errors}
        if ok is not None:
            responses[ok_code] = openapi.json_body(ok, summary)
        else:
            responses[ok_code] = {"description": summary}
        responses.update(extra or {})
        operation = {
            "summary": summary,
            "operationId": op_id,
            "security": session,
            "responses": responses,
        }
        if body is not None:
            operation["requestBody"] = {"required": True, **openapi.json_body(body)}
        openapi.register(path, method, operation)

    op(
        "/api/v1/me/duty",
        "post",
        "Go on or off duty",
        "setDuty",
        DutyIn,
        DutyOut,
        extra={"403": {"description": "not an officer or auxiliary"}},
    )
    op(
        "/api/v1/me/position",
        "post",
        "Report the device's position",
        "setPosition",
        PositionIn,
        PositionOut,
        extra={"403": {"description": "not an officer or auxiliary"}},
    )
    op(
        "/api/v1/push/subscriptions",
        "post",
        "Register a push subscription",
        "addPushSubscription",
        SubscriptionIn,
        SubscriptionOut,
        ok_code="201",
    )
    op(
        "/api/v1/push/subscriptions",
        "delete",
        "Remove a push subscription",
        "removePushSubscription",
        EndpointIn,
        None,
        ok_code="204",
        extra={"404": {"description": "no such subscription of yours"}},
    )
    openapi.register(
        "/api/v1/push/vapid-public-key",
        "get",
        {
            "summary": "The server's VAPID public key (URL-safe base64)",
            "operationId": "getVapidPublicKey",
            "responses": {"200": openapi.json_body(VapidKeyOut, "the key")},
        },
    )
    op(
        "/api/v1/push/receipts",
        "post",
        "Delivery receipt from the service worker (session + CSRF, or the payload's token)",
        "postPushReceipt",
        ReceiptIn,
        ReceiptOut,
        extra={"404": {"description": "no such message for this user"}},
    )
    op(
        "/api/v1/me/test-alert",
        "post",
        "Send a test alert to my devices",
        "testAlert",
        None,
        TestAlertOut,
        ok_code="202",
    )
    openapi.register(
        "/api/v1/me/stream",
        "get",
        {
            "summary": "Server-sent events: my new offers, help requests and reassignments",
            "operationId": "myStream",
            "security": session,
            "parameters": [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {
                    "description": "text/event-stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "401": {"description": "not logged in"},
            },
        },
    )


_document()
