"""What each open stream hears about one event: the facts are read once, items made per stream.

`Facts.load` reads what every stream's filter needs for one event (its warning, its offer, who
holds an offer on or has joined the warning, who is on duty) in a few queries, once per event
per process; `officer_items` and `board_items` are then pure and run for every open stream.
"""

import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import force_locale

from fieldapp import i18n, push
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, Participant, User, Warning

# Event kind -> the item kind an officer's open app receives. Add a row for a new kind.
STREAM_KINDS = {
    "offered": "offer",
    "reassigned": "reassigned",
    "help_requested": "help",
    "offer_taken": "taken",  # a parallel offer closed: a colleague accepted first
}
# Events that change what the officer's pages show about a warning: each is also sent as a
# `changed` item ({warning_id, event, offer_open?, note?}), and a page showing that warning
# refreshes in place; `offer_open` false (with why, in `note`) ends an offer on screen.
CHANGE_KINDS = (
    "offered",
    "accepted",
    "declined",
    "offer_expired",
    "reassigned",
    "resolved",
    "joined",
    "attempt",
    "confirmed",
    "unassigned",
    "help_requested",
    "follow_up_done",
)
OFFICER_KINDS = frozenset(STREAM_KINDS) | frozenset(CHANGE_KINDS)


@dataclass
class Facts:
    """One event and what the stream filters need to know about it, read once."""

    id: int
    kind: str
    station_id: int | None
    warning_id: int | None
    actor_id: int | None
    data: dict
    warning: Warning | None = None
    offer: Offer | None = None
    latest: dict[int, Offer] = field(default_factory=dict)  # officer id -> latest offer
    joined: frozenset[int] = frozenset()
    on_duty: frozenset[int] = frozenset()
    cache: dict = field(default_factory=dict)

    @classmethod
    def light(cls, event: Event) -> "Facts":
        """The event alone, no reads: enough for the board."""
        data = dict(event.data or {})
        return cls(event.id, event.kind, event.station_id, event.warning_id, event.actor_id, data)

    @classmethod
    def load(cls, event: Event) -> "Facts":
        """Read the facts of `event` (inside an app context)."""
        facts = cls.light(event)
        data = facts.data
        if event.kind not in OFFICER_KINDS:
            return facts
        if event.warning_id is not None:
            facts.warning = db.session.get(Warning, event.warning_id)
            if facts.warning is not None:
                _ = facts.warning.owner  # loaded now: rendering may happen later
        if isinstance(data.get("offer_id"), int):
            facts.offer = db.session.get(Offer, data["offer_id"])
        if event.kind in CHANGE_KINDS and event.warning_id is not None:
            offers = db.session.scalars(
                sa.select(Offer).where(Offer.warning_id == event.warning_id).order_by(Offer.id)
            )
            facts.latest = {o.officer_id: o for o in offers}
            facts.joined = frozenset(
                db.session.scalars(
                    sa.select(Participant.user_id).where(Participant.warning_id == event.warning_id)
                )
            )
        if STREAM_KINDS.get(event.kind) == "help" and event.station_id is not None:
            facts.on_duty = frozenset(
                db.session.scalars(
                    sa.select(User.id).where(
                        User.station_id == event.station_id, User.duty_status == "on_duty"
                    )
                )
            )
        return facts

    def _texts(self, kind: str, locale: str) -> tuple[str, str]:
        key = ("texts", kind, locale)
        if key not in self.cache:
            with force_locale(i18n.locale(locale)):
                self.cache[key] = push.texts(kind, self.warning, self.offer)
        return self.cache[key]

    def _ended(self, offer: Offer, locale: str) -> str:
        from fieldapp.field.pages import offer_ended_text

        key = ("ended", offer.id, locale)
        if key not in self.cache:
            with force_locale(i18n.locale(locale)):
                self.cache[key] = offer_ended_text(offer, self.warning)
        return self.cache[key]


def _stream_item(f: Facts, user_id: int, locale: str) -> dict | None:
    kind = STREAM_KINDS.get(f.kind)
    if kind is None:
        return None
    if kind in ("offer", "taken") and f.data.get("officer_id") != user_id:
        return None
    if kind == "reassigned" and f.data.get("from_user_id") != user_id:
        return None
    if kind == "help" and (f.actor_id == user_id or user_id not in f.on_duty):
        return None
    offer = f.offer
    if kind == "offer" and (offer is None or offer.status != "pending"):
        return None
    title, body = f._texts(kind, locale)
    return {
        "kind": kind,
        "warning_id": f.warning_id,
        "offer_id": offer.id if offer else None,
        "title": title,
        "body": body,
        "url": push.warning_path(f.warning_id),
        "expires_at": offer.expires_at.isoformat() if offer and offer.expires_at else None,
    }


def _changed_item(f: Facts, user_id: int, locale: str) -> dict | None:
    if f.kind not in CHANGE_KINDS or f.warning is None:
        return None
    latest = f.latest.get(user_id)
    if latest is None and user_id not in f.joined and f.warning.owner_id != user_id:
        return None
    item = {"kind": "changed", "warning_id": f.warning_id, "event": f.kind}
    if latest is not None:
        item["offer_open"] = latest.status == "pending"
        if latest.status != "pending":
            item["note"] = f._ended(latest, locale)
    return item


def sse(event_id: int, item: dict) -> str:
    data = json.dumps(item, ensure_ascii=False)
    return f"id: {event_id}\nevent: {item['kind']}\ndata: {data}\n\n"


def officer_items(f: Facts, user_id: int, locale: str) -> str:
    """The SSE text an officer's open app receives for `f` ('' when none).

    Items carry nothing of the user but which offer of theirs they concern, so the text is
    made once per (locale, offer) and shared by every stream that gets the same.
    """
    item = _stream_item(f, user_id, locale)
    text = ""
    if item is not None:
        key = ("sse", item["kind"], item["offer_id"], locale)
        if key not in f.cache:
            f.cache[key] = sse(f.id, item)
        text = f.cache[key]
    if f.kind not in CHANGE_KINDS or f.warning is None:
        return text
    latest = f.latest.get(user_id)
    if latest is None and user_id not in f.joined and f.warning.owner_id != user_id:
        return text
    key = ("changed", latest.id if latest is not None else None, locale)
    if key not in f.cache:
        changed = _changed_item(f, user_id, locale)
        f.cache[key] = sse(f.id, changed) if changed is not None else ""
    return text + f.cache[key]


def board_items(f: Facts) -> str:
    """The board's `changed` message for `f` ('' for events of no warning)."""
    if f.warning_id is None:
        return ""
    key = ("board",)
    if key not in f.cache:
        data = json.dumps({"warning_id": f.warning_id, "kind": f.kind})
        f.cache[key] = f"id: {f.id}\nevent: changed\ndata: {data}\n\n"
    return f.cache[key]
