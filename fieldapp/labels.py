"""Human names, in the user's language, for the codes stored in the database."""

from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

FRAUD_TYPES = {
    "online_shopping_refund": _l("Fake online-shop refund"),
    "fake_loan": _l("Fake loan"),
    "impersonating_boss": _l("Impersonating the boss"),
    "impersonating_police": _l("Impersonating police"),
    "order_brushing": _l("Order brushing"),
    "romance_investment": _l("Romance / investment"),
    "other": _l("Other"),
}
RISK_LEVELS = {"high": _l("High risk"), "medium": _l("Medium risk"), "low": _l("Low risk")}
STATUSES = {
    "received": _l("Received"),
    "offered": _l("Offered"),
    "accepted": _l("Accepted"),
    "in_contact": _l("In contact"),
    "resolved": _l("Resolved"),
    "unassigned": _l("Unassigned"),
}
CHANNELS = {
    "phone": _l("Phone call"),
    "wechat_video": _l("WeChat video call"),
    "visit": _l("Visit in person"),
    "other": _l("Other"),
}
OUTCOMES = {
    "persuaded": _l("Persuaded"),
    "already_lost": _l("Already lost money"),
    "not_fraud": _l("Not fraud"),
    "unreachable": _l("Unreachable"),
    "refused": _l("Refused to listen"),
}
ROLES = {
    "officer": _l("Officer"),
    "auxiliary": _l("Auxiliary officer"),
    "chief": _l("Station chief"),
    "admin": _l("Administrator"),
}


def label(table: dict, code: str | None) -> str:
    """The label for `code`, or the code itself when unknown."""
    if code is None:
        return ""
    return str(table.get(code, code))


def distance(metres: float | None) -> str:
    """The one way a distance is written everywhere (pages, alerts, timelines): under a
    kilometre in metres rounded to 10 m (a phone's fix is no finer), else in km to 0.1."""
    if metres is None:
        return ""
    tens = round(metres / 10) * 10
    if tens < 1000:
        return _("%(m)s m", m=format_decimal(tens, format="#,##0"))
    return _("%(km)s km", km=format_decimal(metres / 1000, format="#,##0.0"))


def distance_away(metres: float | None) -> str:
    """ "150 m away" / "1.5 km away", for a line without a "Distance" label in front."""
    if metres is None:
        return ""
    return _("%(distance)s away", distance=distance(metres))


def register(app) -> None:
    """Make the labels available to every template."""
    app.jinja_env.globals.update(
        fraud_label=lambda c: label(FRAUD_TYPES, c),
        risk_label=lambda c: label(RISK_LEVELS, c),
        status_label=lambda c: label(STATUSES, c),
        channel_label=lambda c: label(CHANNELS, c),
        outcome_label=lambda c: label(OUTCOMES, c),
        role_label=lambda c: label(ROLES, c),
        distance=distance,
        distance_away=distance_away,
    )
