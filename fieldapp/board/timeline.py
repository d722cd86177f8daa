"""Human sentences, in the reader's language, for each kind of event on a warning's timeline."""

import sqlalchemy as sa
from flask_babel import gettext as _

from fieldapp import labels
from fieldapp.extensions import db
from fieldapp.models import Event, User


def _who(names: dict[int, str], user_id) -> str:
    if user_id is None:
        return _("nobody")
    return names.get(user_id) or _("user #%(id)s", id=user_id)


def _distance(data: dict) -> str:
    metres = data.get("distance_m")
    if metres is None:
        return ""
    if metres >= 1000:
        return _(" (%(km).1f km away)", km=metres / 1000)
    return _(" (%(m)d m away)", m=metres)


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
        who = _who(names, d.get("officer_id"))
        if d.get("reason") == "reassign":
            return _("Offered to %(who)s after reassignment.", who=who) + _distance(d)
        if d.get("reason") == "help":
            return _("Offered to %(who)s to help.", who=who) + _distance(d)
        return _("Offered to %(who)s (offer %(rank)s).", who=who, rank=d.get("rank", 1)) + (
            _distance(d)
        )
    if kind == "accepted":
        return _("Accepted.")
    if kind == "declined":
        return _("Declined the offer.")
    if kind == "offer_expired":
        return _(
            "Offer to %(who)s expired without an answer.", who=_who(names, d.get("officer_id"))
        )
    if kind == "unassigned":
        return _("Nobody left to offer it to: waiting for the chief.")
    if kind == "reassigned":
        return _(
            "Reassigned from %(old)s to %(new)s.",
            old=_who(names, d.get("from_user_id")),
            new=_who(names, d.get("to_user_id")),
        )
    if kind in ("push_sent", "offer_sent"):
        return _("Push notification sent.")
    if kind in ("delivered", "push_delivered", "receipt"):
        return _(
            "The phone of %(who)s confirmed the notification arrived.",
            who=_who(names, d.get("officer_id")),
        )
    if kind == "push_failed":
        return _("Push notification could not be sent.")
    if kind in ("fallback_sms", "sms_fallback", "fallback"):
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
    if kind in ("confirmed", "confirmation"):
        return _("Confirmed a contact attempt.")
    if kind in ("help_requested", "help"):
        return _("Asked the station for help.")
    if kind in ("help_joined", "joined"):
        return _("Joined to help.")
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
    if kind == "reminder":
        return _("Reminder sent.")
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
    names = (
        dict(
            db.session.execute(
                sa.select(User.id, User.display_name).where(User.id.in_(list(ids)))
            ).all()
        )
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
