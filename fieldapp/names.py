"""How a person is named on the chief's pages: the display name, with the badge number (警号)
whenever there is one, because a county has several officers of the same name."""

from flask_babel import gettext as _
from markupsafe import Markup


def person(name: str | None, badge_no: str | None) -> str:
    """ "杨强（警号 031207）", or the name alone for someone without a badge number."""
    if not name:
        return ""
    if not badge_no:
        return name
    return _("%(name)s (badge %(badge)s)", name=name, badge=badge_no)


def of(user) -> str:
    """`person()` for a User (or any row with display_name and badge_no)."""
    return person(user.display_name, user.badge_no) if user is not None else ""


def person_html(name: str | None, badge_no: str | None) -> Markup:
    """The name, with the badge number on a line of its own (narrow table cells on a phone)."""
    if not badge_no:
        return Markup("{}").format(name or "")
    return Markup('{}<span class="badge-no">{}</span>').format(
        name or "", _("badge %(badge)s", badge=badge_no)
    )
