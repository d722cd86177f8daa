"""Applying the device's queued changes, each exactly once, each on its own.

Every entry carries a client_id made on the device when the entry was created. The first
time an id is seen its result is stored in `client_mutations` with the change itself, in one
transaction; a replay finds that row and answers `duplicate` with the same detail. Entries
commit one by one (this module is the one place besides views that commits) so a bad or
conflicting entry never undoes the good ones sent with it.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from flask_babel import gettext as _
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from fieldapp import clock, dispatch, fieldwork
from fieldapp.extensions import db
from fieldapp.models import CHANNELS, OUTCOMES, ClientMutation, ContactAttempt, User

KINDS = ("accept", "decline", "attempt", "confirm", "resolve", "help", "join", "followup")
MAX_ENTRIES = 200

Kind = Literal[KINDS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
OutcomeCode = Literal[OUTCOMES]  # type: ignore[valid-type]
# PostgreSQL refuses NUL in text and 32-bit ids overflow: refuse both here, as bad data.
Note = Annotated[str | None, Field(max_length=500, pattern=r"^[^\x00]*$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


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
    data: dict[str, Any] = Field(default_factory=dict)
    recorded_at: AwareDatetime | None = None


class AttemptData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    channel: Channel
    reached: bool
    attempted_at: AwareDatetime | None = None
    note: Note = None


class ConfirmData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    attempt_id: Id
    note: Note = None


class ResolveData(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    outcome: OutcomeCode
    loss_amount: Annotated[Decimal | None, Field(ge=0, le=Decimal("1e11"), decimal_places=2)] = None
    app_installed: bool = False
    note: Note = None
    follow_up_at: AwareDatetime | None = None


class SyncIn(BaseModel):
    """POST /api/v1/sync body. Entries are checked one by one, so they stay loose here."""

    entries: Annotated[list[Any], Field(max_length=MAX_ENTRIES)]


class SyncResult(BaseModel):
    client_id: str | None
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    detail: str
    code: str | None = None
    errors: dict[str, str] | None = None


class SyncOut(BaseModel):
    results: list[SyncResult]


_DISPATCH = {
    "taken": ("conflict", lambda: _("A colleague already took this warning.")),
    "closed": ("conflict", lambda: _("This warning was already closed; nothing was changed.")),
    "no_offer": (
        "conflict",
        lambda: _("This offer is no longer open (it timed out or was withdrawn)."),
    ),
    "not_eligible": ("rejected", lambda: _("You cannot take this warning.")),
}


def message_for(code: str) -> str:
    """The officer-readable sentence for a stored result code, in the current language."""
    if code in _DISPATCH:
        return _DISPATCH[code][1]()
    if code.startswith("done:"):
        return fieldwork.say_done(code[5:])
    return fieldwork.error_message(code)


def field_errors(exc: ValidationError) -> dict[str, str]:
    # Imported late: fieldapp.api imports this module for its endpoint.
    from fieldapp.api.errors import field_errors as errors

    return errors(exc)


def _result(client_id, status: str, code: str) -> dict:
    return {"client_id": client_id, "status": status, "detail": message_for(code), "code": code}


def _apply(entry: SyncEntry, user: User, now: datetime) -> dict:
    """Make the change; returns what to remember about it. Raises on conflict or bad data."""
    warning = fieldwork.visible_warning(entry.warning_id, user)
    if warning is None:
        raise fieldwork.FieldError("not_found")
    kind, data = entry.kind, entry.data
    if kind == "accept":
        try:
            offer = dispatch.accept(warning, user, now)
        except dispatch.DispatchError as exc:
            if exc.code != "already_yours":
                raise
            return {}
        return {"offer_id": offer.id}
    if kind == "decline":
        return {"offer_id": dispatch.decline(warning, user, now).id}
    if kind == "attempt":
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
            raise fieldwork.FieldError("attempt_not_found")
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
        return {"notified": len(fieldwork.request_help(warning, user, now))}
    if kind == "join":
        return {"participant_id": fieldwork.join(warning, user, now).id}
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
        return _result(row.client_id, "rejected", "client_id_taken") | {
            "detail": _("This entry id belongs to another user; it was not applied.")
        }
    detail = dict(row.detail or {})
    code = detail.pop("code", "done:" + row.kind)
    # An applied change answers `duplicate`; a conflict stays a conflict, with the same words.
    status = "duplicate" if row.status == "applied" else row.status
    return _result(row.client_id, status, code) | detail


def apply_entry(raw: Any, user: User, now: datetime | None = None) -> dict:
    """Apply one entry and commit it (or roll it back alone); returns its result."""
    now = now or clock.now()
    client_id = raw.get("client_id") if isinstance(raw, dict) else None
    client_id = client_id if isinstance(client_id, str) else None
    try:
        entry = SyncEntry.model_validate(raw)
    except ValidationError as exc:
        return {
            "client_id": client_id,
            "status": "rejected",
            "detail": _("The entry is not valid."),
            "code": "invalid",
            "errors": field_errors(exc),
        }
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
        return {
            "client_id": entry.client_id,
            "status": "rejected",
            "detail": _("The entry is not valid."),
            "code": "invalid",
            "errors": {f"data.{k}": v for k, v in field_errors(exc).items()},
        }
    except (fieldwork.FieldError, dispatch.DispatchError) as exc:
        db.session.rollback()
        code = exc.code
        status = exc.kind if isinstance(exc, fieldwork.FieldError) else _DISPATCH[code][0]
        if status == "conflict":
            # Remembered, so a replay shows the officer the same conflict and changes nothing.
            try:
                _remember(entry, user, "conflict", {"code": code}, now)
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                return _concurrent(entry, user)
        return _result(entry.client_id, status, code)
    except IntegrityError:
        # The same client_id raced in from another tab or a retried request: that one won.
        db.session.rollback()
        return _concurrent(entry, user)


def _concurrent(entry: SyncEntry, user: User) -> dict:
    existing = db.session.get(ClientMutation, entry.client_id)
    if existing is not None:
        return _replay(existing, user)
    return _result(entry.client_id, "conflict", "resolved")


def apply_batch(entries: list, user: User, now: datetime | None = None) -> list[dict]:
    """Apply entries in order, one result each, in the same order."""
    return [apply_entry(raw, user, now) for raw in entries]
