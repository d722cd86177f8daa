"""Applying the device's queued changes, each exactly once, each on its own.

Every entry carries a client_id made on the device when the entry was created. The first
time an id is seen its result is stored in `client_mutations` with the change itself, in one
transaction; a replay finds that row and answers `duplicate` with the same detail. Entries
commit one by one (this module is the one place besides views that commits) so a bad or
conflicting entry never undoes the good ones sent with it.
"""

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from fieldapp import access, clock, dispatch, fieldwork, helping, refusals
from fieldapp.extensions import db
from fieldapp.models import CHANNELS, OUTCOMES, ClientMutation, ContactAttempt, User
from fieldapp.refusals import Refusal
from fieldapp.validation import Id, Instant, Money, field_errors, number_not_list, text

log = logging.getLogger(__name__)

KINDS = ("accept", "decline", "attempt", "confirm", "resolve", "help", "join", "followup")
MAX_ENTRIES = 200

Kind = Literal[KINDS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
OutcomeCode = Literal[OUTCOMES]  # type: ignore[valid-type]
Note = text(500)


class AttemptData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    channel: Channel
    reached: bool
    attempted_at: Instant | None = None
    note: Note | None = None


class ConfirmData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    attempt_id: Id
    note: Note | None = None


class ResolveData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    outcome: OutcomeCode
    loss_amount: Money | None = None
    app_installed: bool = False
    note: Note | None = None
    follow_up_at: Instant | None = None

    _money = field_validator("loss_amount", mode="before")(number_not_list)


class SyncEntry(BaseModel):
    """One queued change as the device recorded it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    client_id: Annotated[
        str,
        Field(
            min_length=8,
            max_length=64,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="made on the device when the entry was created (a UUID)",
        ),
    ]
    kind: Kind
    warning_id: Id
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="AttemptData (attempt), ConfirmData (confirm), ResolveData (resolve); "
        "empty for the other kinds",
        json_schema_extra={
            "anyOf": [
                *(m.model_json_schema() for m in (AttemptData, ConfirmData, ResolveData)),
                {"type": "object", "maxProperties": 0},
            ]
        },
    )
    recorded_at: Instant | None = None


class SyncIn(BaseModel):
    """POST /api/v1/sync body. Entries are checked one by one, each with its own result, so a
    malformed entry is `rejected` in a 200 rather than failing the whole batch."""

    entries: Annotated[
        list[Any],
        Field(
            max_length=MAX_ENTRIES,
            # Any item is accepted: one that is not a SyncEntry is answered `rejected`.
            json_schema_extra={
                "items": {
                    "anyOf": [
                        SyncEntry.model_json_schema(),
                        {"description": "anything else: answered `rejected`"},
                    ]
                }
            },
        ),
    ]


class SyncResult(BaseModel):
    client_id: str | None
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    detail: str
    code: str | None = None
    # field (e.g. "data.reached") -> message, for a refusal that belongs next to one control
    errors: dict[str, str] | None = None
    # True: the server failed for a passing reason, nothing was recorded, send it again later
    retry: bool | None = None


class SyncOut(BaseModel):
    results: list[SyncResult]


def message_for(code: str) -> str:
    """The officer-readable sentence for a result code, in the current language."""
    return refusals.message(code)


def _result(client_id, status: str, code: str) -> dict:
    return {"client_id": client_id, "status": status, "detail": message_for(code), "code": code}


def _refused(entry: "SyncEntry", exc: Refusal) -> dict:
    """The result for a refusal; any code has a status and words."""
    result = _result(entry.client_id, exc.kind, exc.code)
    if exc.field is not None:
        result["errors"] = {f"data.{exc.field}": result["detail"]}
    return result


def _apply(entry: SyncEntry, user: User, now: datetime) -> dict:
    """Make the change; returns what to remember about it. Raises on conflict or bad data."""
    warning = access.visible_warning(entry.warning_id, user)
    if warning is None:
        raise Refusal("not_found")
    kind, data = entry.kind, entry.data
    if kind == "accept":
        try:
            offer = dispatch.accept(warning, user, now)
        except Refusal as exc:
            if exc.code != "already_yours":
                raise
            return {}
        return {"offer_id": offer.id}
    if kind == "decline":
        return {"offer_id": dispatch.decline(warning, user, now).id}
    if kind == "attempt":
        if data.get("reached") is None:  # said plainly, not as a bare "required"
            raise Refusal("reached_required")
        d = AttemptData.model_validate(data)
        attempt = fieldwork.log_attempt(
            warning,
            user,
            client_id=entry.client_id,
            channel=d.channel,
            reached=d.reached,
            attempted_at=d.attempted_at or entry.recorded_at or now,
            note=d.note,
            now=now,
        )
        return {"attempt_id": attempt.id}
    if kind == "confirm":
        d = ConfirmData.model_validate(data)
        attempt = db.session.get(ContactAttempt, d.attempt_id)
        if attempt is None or attempt.warning_id != warning.id:
            raise Refusal("attempt_not_found")
        row = fieldwork.confirm_attempt(
            attempt, user, client_id=entry.client_id, note=d.note, now=now
        )
        return {"confirmation_id": row.id}
    if kind == "resolve":
        d = ResolveData.model_validate(data)
        row = fieldwork.resolve(
            warning,
            user,
            client_id=entry.client_id,
            outcome=d.outcome,
            loss_amount=d.loss_amount,
            app_installed=d.app_installed,
            note=d.note,
            follow_up_at=d.follow_up_at,
            now=now,
        )
        return {"outcome_id": row.id}
    if kind == "help":
        return {"notified": len(helping.request_help(warning, user, now))}
    if kind == "join":
        return {"participant_id": helping.join(warning, user, now).id}
    fieldwork.complete_follow_up(warning, user, now)
    return {}


def _remember(entry: SyncEntry, user: User, status: str, detail: dict, now: datetime) -> None:
    db.session.add(
        ClientMutation(
            client_id=entry.client_id,
            user_id=user.id,
            kind=entry.kind,
            warning_id=entry.warning_id,
            status=status,
            detail=detail,
            created_at=now,
        )
    )


def _replay(row: ClientMutation, user: User) -> dict:
    if row.user_id != user.id:
        return _result(row.client_id, "rejected", "client_id_taken")
    detail = dict(row.detail or {})
    code = detail.pop("code", "done:" + row.kind)
    # An applied change answers `duplicate`; a conflict stays a conflict, with the same words.
    status = "duplicate" if row.status == "applied" else row.status
    return _result(row.client_id, status, code) | detail


def _invalid(client_id, errors: dict[str, str]) -> dict:
    return _result(client_id, "rejected", "invalid") | {"errors": errors}


def apply_entry(raw: Any, user: User, now: datetime | None = None) -> dict:
    """Apply one entry and commit it (or roll it back alone); returns its result. Never
    raises: whatever goes wrong with one entry is that entry's result."""
    now = now or clock.now()
    client_id = raw.get("client_id") if isinstance(raw, dict) else None
    client_id = client_id if isinstance(client_id, str) else None
    try:
        entry = SyncEntry.model_validate(raw)
    except ValidationError as exc:
        return _invalid(client_id, field_errors(exc))
    try:
        return _apply_once(entry, user, now)
    except Exception as exc:  # a bug or a database failure: this entry's result, not a 500
        _rollback()
        transient = isinstance(exc, DBAPIError) and (
            exc.connection_invalidated or isinstance(exc, OperationalError)
        )
        log.error(
            "sync entry %s (%s) failed: %s",
            entry.client_id,
            entry.kind,
            type(exc).__name__,
            exc_info=True,
        )
        return _result(entry.client_id, "rejected", "busy" if transient else "error") | {
            "retry": transient
        }


def _apply_once(entry: SyncEntry, user: User, now: datetime) -> dict:
    existing = db.session.get(ClientMutation, entry.client_id)
    if existing is not None:
        return _replay(existing, user)
    try:
        effect = _apply(entry, user, now)
        code = "done:" + entry.kind
        _remember(entry, user, "applied", {"code": code, **effect}, now)
        db.session.commit()
        return _result(entry.client_id, "applied", code) | effect
    except ValidationError as exc:
        db.session.rollback()
        return _invalid(entry.client_id, {f"data.{k}": v for k, v in field_errors(exc).items()})
    except refusals.Duplicate as dup:
        # The same attempt a moment ago (a second tap): answered as that one, nothing new.
        db.session.rollback()
        return _remember_as(entry, user, "applied", "done:attempt", now, dup.effect)
    except Refusal as exc:
        db.session.rollback()
        result = _refused(entry, exc)
        if exc.kind != "conflict":
            return result  # not remembered: nothing happened, so a fixed retry may apply
        # Remembered, so a replay shows the officer the same conflict and changes nothing.
        return _remember_as(entry, user, "conflict", exc.code, now, {}, result)
    except IntegrityError:
        # The same client_id raced in from another tab or a retried request: that one won.
        db.session.rollback()
        return _concurrent(entry, user)


def _remember_as(
    entry: SyncEntry,
    user: User,
    status: str,
    code: str,
    now: datetime,
    effect: dict,
    result: dict | None = None,
) -> dict:
    try:
        _remember(entry, user, status, {"code": code, **effect}, now)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _concurrent(entry, user)
    if result is not None:
        return result
    return _result(entry.client_id, "duplicate" if status == "applied" else status, code) | effect


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection is gone: start the next entry on a fresh one
        db.session.close()


def _concurrent(entry: SyncEntry, user: User) -> dict:
    existing = db.session.get(ClientMutation, entry.client_id)
    if existing is not None:
        return _replay(existing, user)
    return _result(entry.client_id, "conflict", "collided")


def apply_batch(entries: list, user: User, now: datetime | None = None) -> list[dict]:
    """Apply entries in order, one result each, in the same order."""
    return [apply_entry(raw, user, now) for raw in entries]
