"""The figures as one table of rows (shared by the page and the CSV), and small SVG charts.

The page writes numbers as the reader's locale does (3,785,600.00, ¥, through Babel); the CSV
keeps plain numbers (3785600.00) so a spreadsheet can add them up.
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from markupsafe import Markup, escape

from fieldapp import labels, names, numbers
from fieldapp.figures import Figures
from fieldapp.periods import Period


def fmt_rate(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def fmt_seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def fmt_money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class Formats:
    """How one output writes counts, rates, seconds and money."""

    count: Callable
    rate: Callable
    seconds: Callable
    money: Callable


PLAIN = Formats(count=str, rate=fmt_rate, seconds=fmt_seconds, money=fmt_money)
LOCALE = Formats(
    count=numbers.count, rate=numbers.rate, seconds=numbers.seconds, money=numbers.money
)


def period_label(period: Period) -> str:
    """ "2026-12-01 至 2026-12-01": both dates included, as on the page."""
    return _(
        "%(start)s to %(end)s", start=period.start.isoformat(), end=period.last_day.isoformat()
    )


def csv_filename(period: Period) -> str:
    """fieldapp-figures-2026-12-01-2026-12-01.csv: the first and the last day included."""
    return f"fieldapp-figures-{period.start.isoformat()}-{period.last_day.isoformat()}.csv"


def summary_rows(fig: Figures, fmt: Formats = PLAIN) -> list[tuple[str, str, str]]:
    """(figure, this period, same period last year) for the headline figures."""
    last = fig.last_year
    spec = [
        (_("Warnings received"), lambda f: f.totals.received, fmt.count),
        (_("People reached"), lambda f: f.totals.reached, fmt.count),
        (_("Contact rate"), lambda f: f.totals.contact_rate, fmt.rate),
        (_("Time to accept, median (s)"), lambda f: f.timing.accept_median, fmt.seconds),
        (_("Time to accept, 90th percentile (s)"), lambda f: f.timing.accept_p90, fmt.seconds),
        (_("Time to first contact, median (s)"), lambda f: f.timing.contact_median, fmt.seconds),
        (
            _("Time to first contact, 90th percentile (s)"),
            lambda f: f.timing.contact_p90,
            fmt.seconds,
        ),
        (_("Outcomes recorded"), lambda f: f.totals.outcomes, fmt.count),
        (_("Persuaded"), lambda f: f.totals.persuaded, fmt.count),
        (_("Persuasion rate"), lambda f: f.totals.persuasion_rate, fmt.rate),
        (_("Anti-fraud app installs"), lambda f: f.totals.app_installs, fmt.count),
        (_("Losses avoided (yuan)"), lambda f: f.totals.losses_avoided, fmt.money),
        (_("Reported losses (yuan)"), lambda f: f.totals.reported_losses, fmt.money),
        (_("Defrauded after the warning"), lambda f: f.totals.defrauded_after, fmt.count),
        (
            _("Share defrauded after the warning"),
            lambda f: f.totals.defrauded_after_rate,
            fmt.rate,
        ),
    ]
    rows = []
    for name, get, write in spec:
        rows.append((name, write(get(fig)), write(get(last)) if last is not None else ""))
    for channel, n in fig.channels.items():
        before = fmt.count(last.channels.get(channel, 0)) if last is not None else ""
        rows.append(
            (
                _("Reached by %(channel)s", channel=labels.label(labels.CHANNELS, channel)),
                fmt.count(n),
                before,
            )
        )
    return rows


class _SafeWriter:
    """A csv writer that defuses text cells Excel would run as formulas (=, +, -, @)."""

    def __init__(self, out):
        self._w = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row) -> None:
        self._w.writerow([_cell(v) for v in row])


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _breakdown(w: _SafeWriter, heading: str, rows) -> None:
    """One breakdown table (by fraud type, by officer): label, received, reached, persuaded."""
    w.writerow([heading, _("Received"), _("Reached"), _("Persuaded"), _("Persuasion rate")])
    for label, b in rows:
        w.writerow([label, b.received, b.reached, b.persuaded, fmt_rate(b.persuasion_rate)])


def csv_bytes(fig: Figures, station_label: str, station_names: dict[int, str]) -> bytes:
    """UTF-8 with BOM and CRLF, so Excel opens it with the Chinese intact."""
    out = io.StringIO()
    w = _SafeWriter(out)
    county = fig.station_id is None
    w.writerow([_("Period"), period_label(fig.period)])
    w.writerow([_("Station"), station_label])
    w.writerow([])
    w.writerow([_("Figure"), _("This period"), _("Same period last year")])
    for row in summary_rows(fig):
        w.writerow(row)
    w.writerow([])
    _breakdown(
        w,
        _("Fraud type"),
        [(labels.label(labels.FRAUD_TYPES, b.key), b) for b in fig.fraud_types],
    )
    w.writerow([])
    _breakdown(
        w,
        _("Officer"),
        [(names.person(b.label, b.badge_no) or _("Not assigned"), b) for b in fig.officers],
    )
    w.writerow([])
    head = [_("Officer"), _("Offers"), _("Accepts"), _("Declines"), _("Open warnings now")]
    head += [_("Timeouts"), _("Taken by a colleague")]
    w.writerow(([_("Station")] if county else []) + head)
    for wl in fig.workload:
        station = [station_names.get(wl.station_id, "")] if county else []
        w.writerow(
            station
            + [names.person(wl.name, wl.badge_no), wl.offers, wl.accepts, wl.declines, wl.open_now]
            + [wl.timeouts, wl.taken]
        )
    if fig.ranking:
        w.writerow([])
        w.writerow([_("Rank"), _("Station"), _("Received"), _("Persuaded"), _("Persuasion rate")])
        for n, b in enumerate(fig.ranking, 1):
            w.writerow([n, b.label, b.received, b.persuaded, fmt_rate(b.persuasion_rate)])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def by_station(rows, station_names: dict[int, str]) -> list[tuple[str, list]]:
    """Rows (each with .station_id) grouped under their station's name, in the rows' order."""
    groups: dict[int | None, list] = {}
    for row in rows:
        groups.setdefault(row.station_id, []).append(row)
    return [
        (station_names.get(sid, "") or _("Not assigned"), items) for sid, items in groups.items()
    ]


# Text at its own size (14 px) whatever the chart's width: the bars are sized in percent of the
# chart instead of scaling one drawing, so labels stay readable on a 360 px phone.
ROW_H = 54
LEGEND_H = 28
NOW_COLOUR = "#0b3d91"
LAST_COLOUR = "#6b6b6b"
BAR_MAX_PCT = 78  # room after the longest bar for its number


def bar_chart(items: list[tuple[str, float, float | None]], title: str) -> Markup:
    """Horizontal bars: this period (dark) over the same period last year (grey), with a legend.

    Presentation attributes only (fill=, font-size=): the CSP forbids style attributes.
    """
    if not items:
        return Markup("")
    top = max([v for _l, v, _p in items] + [p or 0 for _l, _v, p in items] + [1])
    with_last = any(p is not None for _l, _v, p in items)
    legend = LEGEND_H if with_last else 0
    height = legend + len(items) * ROW_H + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="100%" height="{height}" '
        f'role="img" aria-label="{escape(title)}">'
    ]
    if with_last:
        parts.append(
            f'<rect x="0" y="6" width="14" height="14" fill="{NOW_COLOUR}"/>'
            f'<text x="20" y="18" font-size="14" fill="#111">{escape(_("This period"))}</text>'
            f'<rect x="50%" y="6" width="14" height="14" fill="{LAST_COLOUR}"/>'
            f'<text x="50%" dx="20" y="18" font-size="14" fill="#111">'
            f"{escape(_('Same period last year'))}</text>"
        )
    for i, (label, value, previous) in enumerate(items):
        y = legend + i * ROW_H
        pct_now = round(BAR_MAX_PCT * value / top, 2)
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="14" fill="#111">{escape(label)}</text>'
            f'<rect x="0" y="{y + 23}" width="{pct_now}%" height="14" fill="{NOW_COLOUR}"/>'
            f'<text x="{pct_now}%" dx="6" y="{y + 36}" font-size="14" fill="#111">'
            f"{escape(numbers.count(value))}</text>"
        )
        if previous is not None:
            pct_prev = round(BAR_MAX_PCT * previous / top, 2)
            parts.append(
                f'<rect x="0" y="{y + 40}" width="{pct_prev}%" height="9" fill="{LAST_COLOUR}"/>'
                f'<text x="{pct_prev}%" dx="6" y="{y + 50}" font-size="12" fill="#4a4a4a">'
                f"{escape(numbers.count(previous))}</text>"
            )
    parts.append("</svg>")
    # Every dynamic piece above went through escape(); the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704
