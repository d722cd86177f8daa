"""Human sentences, in the reader's language, for each kind of event on a warning's timeline."""

import sqlalchemy as sa
from flask_babel import gettext as _

from fieldapp import labels
from fieldapp.extensions import db
from fieldapp.models import Event, User
from fieldapp.names import person


def _who(names: dict[int, str], user_id) -> str:
    if user_id is None:
        return _("nobody")
    return names.get(user_id) or _("user #%(id)s", id=user_id)


def _offered(d: dict, who: str) -> str:
    """The offer's sentence, its distance inside it (not a bracket after the full stop)."""
    reason = d.get("reason")
    metres = d.get("distance_m")
    if metres is None:
        if reason == "reassign":
            return _("Offered to %(who)s after reassignment.", who=who)
        if reason == "help":
            return _("Offered to %(who)s to help.", who=who)
        return _("Offered to %(who)s (offer %(rank)s).", who=who, rank=d.get("rank", 1))
    away = labels.distance(metres)
    if reason == "reassign":
        return _(
            "Offered to %(who)s after reassignment, %(distance)s away.", who=who, distance=away
        )
    if reason == "help":
        return _("Offered to %(who)s to help, %(distance)s away.", who=who, distance=away)
    return _(
        "Offered to %(who)s (offer %(rank)s), %(distance)s away.",
        who=who,
        rank=d.get("rank", 1),
        distance=away,
    )


def describe(event: Event, names: dict[int, str]) -> str:
    """One sentence for `event`; unknown kinds get a generic one naming the kind."""
    d = event.data or {}
    kind = event.kind
    if kind == "received":
        source = d.get("source")
        if source == "api":
            return _("Warning received from the anti-fraud centre.")
        return _("Warning entered by hand.")
    if kind == "offered":
        return _offered(d, _who(names, d.get("officer_id")))
    if kind == "accepted":
        return _("Accepted.")
    if kind == "declined":
        return _("Declined the offer.")
    if kind == "offer_expired":
        return _(
            "Offer to %(who)s expired without an answer.", who=_who(names, d.get("officer_id"))
        )
    if kind == "offer_taken":
        return _(
            "Offer to %(who)s closed: a colleague accepted first.",
            who=_who(names, d.get("officer_id")),
        )
    if kind == "unassigned":
        return _("Nobody left to offer it to: waiting for the chief.")
    if kind == "reassigned":
        return _(
            "Reassigned from %(old)s to %(new)s.",
            old=_who(names, d.get("from_user_id")),
            new=_who(names, d.get("to_user_id")),
        )
    if kind == "push_sent":
        return _("Push notification sent.")
    if kind == "delivered":
        return _(
            "The phone of %(who)s confirmed the notification arrived.",
            who=_who(names, d.get("officer_id")),
        )
    if kind == "fallback_sms":
        return _(
            "No receipt from the phone: SMS sent to %(who)s.", who=_who(names, d.get("officer_id"))
        )
    if kind == "fallback_unavailable":
        return _("No receipt from the phone, and no phone number on file for an SMS.")
    if kind == "attempt":
        channel = labels.label(labels.CHANNELS, d.get("channel"))
        if d.get("reached"):
            return _("Contact attempt by %(channel)s: reached the person.", channel=channel)
        return _("Contact attempt by %(channel)s: not reached.", channel=channel)
    if kind == "confirmed":
        return _("Confirmed a contact attempt.")
    if kind == "help_requested":
        return _("Asked the station for help.")
    if kind == "joined":
        return _("Joined to help.")
    if kind == "join_requested":
        return _("Asked %(who)s to join and help.", who=_who(names, d.get("user_id")))
    if kind == "follow_up_done":
        return _("Follow-up visit done.")
    if kind == "resolved":
        text = _("Resolved: %(outcome)s.", outcome=labels.label(labels.OUTCOMES, d.get("outcome")))
        if d.get("app_installed"):
            text += " " + _("Anti-fraud app installed.")
        return text
    if kind == "outcome_amended":
        if d.get("defrauded_after"):
            loss = d.get("later_loss_amount")
            if loss is not None:
                return _(
                    "Outcome amended: defrauded after the warning, loss %(amount).2f yuan.",
                    amount=loss,
                )
            return _("Outcome amended: defrauded after the warning.")
        return _("Outcome amended: not defrauded after the warning.")
    return _("Event: %(kind)s.", kind=kind)


def render(events_: list[Event]) -> list[dict]:
    """The timeline as dicts for the template: when, who, sentence, kind."""
    ids: set[int] = set()
    for e in events_:
        if e.actor_id:
            ids.add(e.actor_id)
        for key in ("officer_id", "from_user_id", "to_user_id", "user_id"):
            if isinstance((e.data or {}).get(key), int):
                ids.add(e.data[key])
    # Named with their badge numbers: two officers of one name must not read as one.
    names = (
        {
            uid: person(name, badge)
            for uid, name, badge in db.session.execute(
                sa.select(User.id, User.display_name, User.badge_no).where(User.id.in_(list(ids)))
            )
        }
        if ids
        else {}
    )
    return [
        {
            "at": e.created_at,
            "who": names.get(e.actor_id) if e.actor_id else None,
            "text": describe(e, names),
            "kind": e.kind,
            "id": e.id,
        }
        for e in events_
    ]
