"""Forms of the people pages; every one carries the CSRF token."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField
from wtforms.validators import AnyOf, DataRequired, InputRequired, NumberRange

from fieldapp.labels import ROLES


class ActionForm(FlaskForm):
    """A one-button change (unlock, reactivate): nothing but the CSRF token."""


class ConfirmForm(FlaskForm):
    """The confirm step of a change that cannot be undone with one click.

    `version` is the account's session version the page was built on: a second submit of the
    same page (a double tap) finds it moved on and changes nothing.
    """

    confirm = HiddenField(validators=[AnyOf(["yes"])])
    version = IntegerField(
        widget=HiddenField.widget, validators=[InputRequired(), NumberRange(0, 2**31 - 1)]
    )


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), validators=[DataRequired()])
    seen_role = HiddenField(validators=[AnyOf(list(ROLES))])

    def offer(self, roles: tuple[str, ...]) -> "RoleForm":
        """Limit the choice to `roles` (what the actor may give)."""
        self.role.choices = [(code, str(ROLES[code])) for code in roles]
        return self
