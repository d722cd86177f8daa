"""What the officer's pages show: the warning page's state, built once for the view and for
the no-JavaScript form path that re-renders it with the officer's refused values."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import sqlalchemy as sa
from flask_babel import get_locale
from flask_babel import gettext as _

from fieldapp import fieldread, fieldwork, helping
from fieldapp.extensions import db
from fieldapp.models import Offer, User, Warning


@dataclass
class OfferState:
    """The current user's offer for a warning: answerable (`open`), or why it ended."""

    open: Offer | None = None
    ended: str | None = None
    taken: bool = False  # a parallel offer a colleague accepted first: Accept shown disabled


def offer_state(warning: Warning, user: User, now: datetime, works_on: bool) -> OfferState:
    """An offer is answerable only while pending and in time; a late one is shown as ended
    (the page never offers a button that the worker is about to take away)."""
    latest = db.session.scalar(
        sa.select(Offer)
        .where(Offer.warning_id == warning.id, Offer.officer_id == user.id)
        .order_by(Offer.id.desc())
        .limit(1)
    )
    if latest is None or works_on:
        return OfferState()
    if latest.status == "pending" and (latest.expires_at is None or latest.expires_at > now):
        return OfferState(open=latest)
    return OfferState(ended=offer_ended_text(latest, warning), taken=latest.status == "taken")


def offer_ended_text(offer: Offer, warning: Warning) -> str:
    """Why an offer can no longer be answered, in one sentence."""
    if offer.status in ("pending", "expired"):
        return _("Time is up: this offer was not answered in time and moves on to a colleague.")
    if offer.status == "declined":
        return _("You declined this warning.")
    if offer.status == "taken":
        return _("Accepted by another officer.")
    if not warning.is_open:
        return _("This warning is closed.")
    if warning.owner is not None:
        return _("%(name)s has taken this warning.", name=warning.owner.display_name)
    return _("This offer was withdrawn by the chief.")


def map_links(warning: Warning) -> dict | None:
    """Amap and Baidu map URIs for the person's position (WGS-84); no tile server needed."""
    if warning.lat is None or warning.lon is None:
        return None
    title = quote(_("Warning location"))
    return {
        "amap": f"https://uri.amap.com/marker?position={warning.lon:.6f},{warning.lat:.6f}"
        f"&name={title}&coordinate=wgs84&callnative=1",
        "baidu": f"https://api.map.baidu.com/marker?location={warning.lat:.6f},{warning.lon:.6f}"
        f"&title={title}&content={title}&coord_type=wgs84&output=html&src=fieldapp",
    }


def warning_context(warning: Warning, user: User, now: datetime) -> dict:
    """Everything the warning page template needs, for `user` at `now`."""
    works_on = fieldwork.works_on(warning, user)
    offer = offer_state(warning, user, now, works_on)
    return {
        "w": warning,
        "now": now,
        "offer": offer.open,
        "offer_ended": offer.ended,
        "offer_taken": offer.taken,
        "works_on": works_on,
        # Never to the officer who holds an offer (they accept it): fieldapp.helping decides.
        "can_join": helping.may_join(warning, user),
        "can_resolve": fieldwork.may_resolve(warning, user),
        "distance_m": fieldread.distance_to(warning, user),
        "maps": map_links(warning),
        "visit_required": fieldwork.visit_required(warning),
        "has_visit": fieldwork.has_reached_visit(warning),
        "has_contact": fieldwork.has_reached_contact(warning),
        "talking_points": fieldread.talking_points(warning.fraud_type, str(get_locale())),
        "earlier": fieldread.earlier_warnings(warning, user),
        "nearby": fieldread.nearby_same_trick(warning, now=now),
        # As the chief's page tells it, with reached / not reached and each note.
        "timeline": fieldread.timeline(warning),
    }
