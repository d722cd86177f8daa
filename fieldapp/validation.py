"""What every input shares: clean text, ids, times and phone numbers, and one message per error.

Pydantic models everywhere (intake, sync, the device endpoints) build on these types, so the
checks and the OpenAPI document generated from the models say the same thing. Views turn a
ValidationError into `{field: message}` with `field_errors`.
"""

import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from flask_babel import gettext as _
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, ValidationError
from pydantic_core import PydanticCustomError

# --- text -----------------------------------------------------------------------------------

# C0 controls but tab, line feed and carriage return, and DEL: PostgreSQL refuses NUL in text
# and none of them belongs in a name, an address or a note.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
# Bidirectional embeddings, overrides, isolates and marks: they make text display in an order
# other than the one stored ("spoofable text"). Chinese and Latin text never needs them.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_BIDI_RE = re.compile(f"[{_BIDI}]")
_CONTROL_RE = re.compile(f"[{_CONTROLS}]")
# For the OpenAPI document: what a client should send (a subset of what is accepted).
PLAIN_PATTERN = f"^[^{_CONTROLS}{_BIDI}]*$"
SOME_PATTERN = f"^[^{_CONTROLS}{_BIDI}]*[^\\s{_CONTROLS}{_BIDI}][^{_CONTROLS}{_BIDI}]*$"


def clean_text(value: Any) -> Any:
    """Bidi controls removed; control characters (NUL included) refused."""
    if not isinstance(value, str):
        return value
    value = _BIDI_RE.sub("", value)
    if _CONTROL_RE.search(value):
        raise PydanticCustomError("text_control", "control characters are not allowed")
    return value


def strip_bidi(value: str) -> str:
    """The text without bidirectional controls (for text that never went through a model)."""
    return _BIDI_RE.sub("", value)


def has_controls(value: str) -> bool:
    return bool(_CONTROL_RE.search(value))


def text(max_length: int, min_length: int = 0, **field: Any) -> Any:
    """A free-text field: bidi controls stripped, control characters refused, whitespace trimmed."""
    pattern = SOME_PATTERN if min_length else PLAIN_PATTERN
    return Annotated[
        str,
        Field(
            min_length=min_length,
            max_length=max_length,
            json_schema_extra={"pattern": pattern},
            **field,
        ),
        BeforeValidator(clean_text),
    ]


# --- numbers and ids ------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # INTEGER primary keys
MAX_EVENT_ID = 2**63 - 1  # the event log's BIGINT
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def parse_id(raw: str | None, maximum: int = MAX_ID) -> int | None:
    """An id from a query string, form field or header: ASCII digits within range, else None.

    `str.isdigit()` is true for "²" and "٣", which `int()` then refuses or reads as another
    number; a huge number overflows the database's integer.
    """
    raw = (raw or "").strip()
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None


def number_not_list(value: Any) -> Any:
    """Before-validator for a Money field read leniently from JSON data: no list or object.

    Lenient pydantic reads a 3-item list as Decimal's (sign, digits, exponent) tuple and then
    raises ValueError instead of a validation error; strict reading refuses lists itself. (Not
    part of `Money`: any before-validator makes the strict reading refuse every number.)
    """
    if isinstance(value, list | tuple | dict):
        raise PydanticCustomError("decimal_type", "not a number")
    return value


# Yuan with fen, up to a hundred billion. "multipleOf 0.01" only in the document: pydantic's
# Decimal multiple_of check raises (instead of refusing) on huge values; decimal_places refuses.
Money = Annotated[
    Decimal,
    Field(
        ge=0,
        le=Decimal("1e11"),
        decimal_places=2,
        strict=False,  # a JSON number or a decimal string, as documented, even in strict mode
        json_schema_extra={"multipleOf": 0.01},
    ),
]


# --- times ----------------------------------------------------------------------------------

FIRST_YEAR, LAST_YEAR = 2000, 2099
RFC3339_PATTERN = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
)


def _in_years(value: datetime) -> datetime:
    # Checked in the sender's own offset, so converting to UTC can never overflow.
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError("time_out_of_range", "year out of range")
    return value.astimezone(UTC)


# An RFC 3339 time with its offset, within years that make sense, returned in UTC. The
# documented pattern leaves out days 29-31 only so that generated examples are always real dates.
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_in_years),
    Field(json_schema_extra={"pattern": RFC3339_PATTERN}),
]


def date_in_range(day) -> bool:
    """A date that figures and periods can work with (one year back and one day on stay valid)."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


# --- phone numbers --------------------------------------------------------------------------

_MAINLAND_MOBILE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})", re.ASCII)
_DIALABLE = re.compile(r"\+?[0-9]{3,15}", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-()]")
# What the document promises is accepted: digits, spaces, dashes, brackets, one leading +.
PHONE_PATTERN = r"^[ ()-]*\+?([ ()-]*[0-9]){3,15}[ ()-]*$"


def _ascii_digits(value: str) -> str:
    # NFKC turns full-width digits and signs into ASCII (１３８ → 138, ＋ → +); other scripts'
    # decimal digits (Arabic-Indic ٣, Devanagari ३) it leaves, so read those by their value.
    value = unicodedata.normalize("NFKC", value)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in value)


def normalise_phone(raw: str) -> str:
    """A mainland mobile as its 11 digits; any other dialable number as ASCII digits with an
    optional +. Raises PydanticCustomError('phone_invalid') for anything else."""
    compact = _SEPARATORS.sub("", _ascii_digits(raw))
    mobile = _MAINLAND_MOBILE.fullmatch(compact)
    if mobile:
        return mobile.group(1)
    if _DIALABLE.fullmatch(compact):
        return compact
    raise PydanticCustomError("phone_invalid", "not a dialable phone number")


Phone = Annotated[
    str,
    Field(min_length=3, max_length=32, json_schema_extra={"pattern": PHONE_PATTERN}),
    BeforeValidator(clean_text),
    AfterValidator(normalise_phone),
]


# --- messages -------------------------------------------------------------------------------

_TIME = lambda: _("Must be an RFC 3339 time, e.g. 2026-11-25T08:30:00+08:00.")  # noqa: E731
_MESSAGES = {
    "string_type": lambda: _("Must be text."),
    "float_type": lambda: _("Must be a number."),
    "float_parsing": lambda: _("Must be a number."),
    "int_type": lambda: _("Must be a whole number."),
    "int_parsing": lambda: _("Must be a whole number."),
    "int_from_float": lambda: _("Must be a whole number."),
    "int_parsing_size": lambda: _("Must be a whole number."),
    "decimal_type": lambda: _("Must be a number."),
    "decimal_parsing": lambda: _("Must be a number."),
    "finite_number": lambda: _("Must be a finite number."),
    "bool_type": lambda: _("Must be true or false."),
    "bool_parsing": lambda: _("Must be true or false."),
    "model_type": lambda: _("Must be an object."),
    "model_attributes_type": lambda: _("Must be an object."),
    "dict_type": lambda: _("Must be an object."),
    "list_type": lambda: _("Must be a list."),
    "too_long": lambda: _("Too many items."),
    "missing": lambda: _("This field is required."),
    "datetime_type": _TIME,
    "datetime_parsing": _TIME,
    "datetime_from_date_parsing": _TIME,
    "datetime_object_invalid": _TIME,
    "timezone_aware": lambda: _("The time must carry a zone offset, e.g. +08:00."),
    "time_out_of_range": lambda: _(
        "The year must be between %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR
    ),
    "text_control": lambda: _("Must not contain control characters."),
    "phone_invalid": lambda: _(
        "Must be a mainland mobile number (11 digits, optional +86) or another dialable number."
    ),
    "location_or_station": lambda: _("Give the resident's location or a station_code."),
    "decimal_max_places": lambda: _("At most two decimal places (fen)."),
    "decimal_max_digits": lambda: _("Must be a number."),
    "json_invalid": lambda: _("The body is not valid JSON."),
    "json_type": lambda: _("The body is not valid JSON."),
    "string_pattern_mismatch": lambda: _("Invalid value."),
}


def message_for(error: dict) -> str:
    """One translated sentence for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _MESSAGES:
        return _MESSAGES[kind]()
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
