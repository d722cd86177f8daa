"""Numbers, money, rates and ages as the reader's locale writes them (through Babel).
Distances are written one way everywhere: labels.distance.

The chief's pages use these; the CSV export keeps plain machine-readable numbers instead.
"""

from decimal import Decimal

from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _

from fieldapp import labels

RATE_FORMAT = "#,##0.0%"


def count(value: int | float | None) -> str:
    """12,345; empty for None."""
    return "" if value is None else format_decimal(value, format="#,##0")


def money(value: Decimal | float | None) -> str:
    """3,785,600 元 (3,785,600 yuan; fen only when there are any: 12.50 元); empty for None.
    One way everywhere: the officer's page, the chief's case page and the figures."""
    return "" if value is None else _("%(amount)s yuan", amount=amount(value))


def amount(value: Decimal | float) -> str:
    """3,785,600 or 12.50: the number of yuan inside a sentence that names the unit itself."""
    value = Decimal(str(value))
    pattern = "#,##0" if value == value.to_integral_value() else "#,##0.00"
    return format_decimal(value, format=pattern)


def rate(value: float | None) -> str:
    """12.3%; empty for None."""
    return "" if value is None else format_percent(value, format=RATE_FORMAT)


def seconds(value: float | None) -> str:
    """Whole seconds with grouping: 1,234; empty for None."""
    return "" if value is None else format_decimal(round(value), format="#,##0")


def duration(value: float) -> str:
    """45 s, 3 min, 2 h 5 min: how long something has waited or how old it is."""
    value = max(int(value), 0)
    if value < 60:
        return _("%(n)d s", n=value)
    if value < 3600:
        return _("%(n)d min", n=value // 60)
    return _("%(h)d h %(m)d min", h=value // 3600, m=(value % 3600) // 60)


def countdown(seconds: float) -> str:
    """1:29: the time an offer has left, as the officer's page and the board both count it."""
    value = max(int(seconds), 0)
    return f"{value // 60}:{value % 60:02d}"


FILTERS = {
    "fmt_count": count,
    "fmt_money": money,
    "fmt_amount": amount,
    "fmt_rate": rate,
    "fmt_distance": labels.distance,
    "fmt_duration": duration,
}
