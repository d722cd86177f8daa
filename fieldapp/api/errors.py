"""Turning pydantic validation errors into one clear, translated message per field."""

from flask_babel import gettext as _
from pydantic import ValidationError

_TYPE_NAMES = {
    "string_type": lambda: _("Must be text."),
    "float_type": lambda: _("Must be a number."),
    "float_parsing": lambda: _("Must be a number."),
    "int_type": lambda: _("Must be a whole number."),
    "decimal_type": lambda: _("Must be a number."),
    "decimal_parsing": lambda: _("Must be a number."),
    "finite_number": lambda: _("Must be a finite number."),
    "bool_type": lambda: _("Must be true or false."),
    "model_type": lambda: _("Must be an object."),
    "model_attributes_type": lambda: _("Must be an object."),
    "dict_type": lambda: _("Must be an object."),
    "list_type": lambda: _("Must be a list."),
    "missing": lambda: _("This field is required."),
    "datetime_type": lambda: _("Must be an RFC 3339 time, e.g. 2026-11-25T08:30:00+08:00."),
    "datetime_parsing": lambda: _("Must be an RFC 3339 time, e.g. 2026-11-25T08:30:00+08:00."),
    "datetime_from_date_parsing": lambda: _(
        "Must be an RFC 3339 time, e.g. 2026-11-25T08:30:00+08:00."
    ),
    "timezone_aware": lambda: _("The time must carry a zone offset, e.g. +08:00."),
    "phone_invalid": lambda: _(
        "Must be a mainland mobile number (11 digits, optional +86) or another dialable number."
    ),
    "location_or_station": lambda: _("Give the resident's location or a station_code."),
    "decimal_max_places": lambda: _("At most two decimal places (fen)."),
    "json_invalid": lambda: _("The body is not valid JSON."),
}


def message_for(error: dict) -> str:
    """One translated sentence for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _TYPE_NAMES:
        return _TYPE_NAMES[kind]()
    if kind == "string_too_long":
        return _("At most %(n)d characters.", n=int(ctx.get("max_length", 0)))
    if kind == "string_too_short":
        if int(ctx.get("min_length", 1)) <= 1:
            return _("Must not be empty.")
        return _("At least %(n)d characters.", n=int(ctx.get("min_length", 0)))
    if kind in ("greater_than_equal", "greater_than"):
        return _("Must be at least %(n)s.", n=ctx.get("ge", ctx.get("gt")))
    if kind in ("less_than_equal", "less_than"):
        return _("Must be at most %(n)s.", n=ctx.get("le", ctx.get("lt")))
    if kind == "literal_error":
        return _("Must be one of: %(values)s.", values=ctx.get("expected", ""))
    return _("Invalid value.")


def field_errors(exc: ValidationError) -> dict[str, str]:
    """{field: message} with dotted paths for nested fields; the first error per field wins."""
    out: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path = [str(p) for p in error["loc"]]
        field = ".".join(path) if path else "body"
        if error["type"] == "location_or_station":
            field = "location"
        out.setdefault(field, message_for(error))
    return out
