"""The figures as one table of rows (shared by the page and the CSV), and small SVG charts."""

import csv
import io
from decimal import Decimal

from flask_babel import gettext as _
from markupsafe import Markup, escape

from fieldapp import labels
from fieldapp.figures import Figures


def fmt_rate(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def fmt_seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def fmt_money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def summary_rows(fig: Figures) -> list[tuple[str, str, str]]:
    """(figure, this period, same period last year) for the headline figures."""
    last = fig.last_year

    def pair(get, fmt=str):
        now = fmt(get(fig))
        before = fmt(get(last)) if last is not None else ""
        return now, before

    spec = [
        (_("Warnings received"), lambda f: f.totals.received, str),
        (_("People reached"), lambda f: f.totals.reached, str),
        (_("Contact rate"), lambda f: f.totals.contact_rate, fmt_rate),
        (_("Time to accept, median (s)"), lambda f: f.timing.accept_median, fmt_seconds),
        (_("Time to accept, 90th percentile (s)"), lambda f: f.timing.accept_p90, fmt_seconds),
        (_("Time to first contact, median (s)"), lambda f: f.timing.contact_median, fmt_seconds),
        (
            _("Time to first contact, 90th percentile (s)"),
            lambda f: f.timing.contact_p90,
            fmt_seconds,
        ),
        (_("Outcomes recorded"), lambda f: f.totals.outcomes, str),
        (_("Persuaded"), lambda f: f.totals.persuaded, str),
        (_("Persuasion rate"), lambda f: f.totals.persuasion_rate, fmt_rate),
        (_("Anti-fraud app installs"), lambda f: f.totals.app_installs, str),
        (_("Losses avoided (yuan)"), lambda f: f.totals.losses_avoided, fmt_money),
        (_("Reported losses (yuan)"), lambda f: f.totals.reported_losses, fmt_money),
        (_("Defrauded after the warning"), lambda f: f.totals.defrauded_after, str),
        (_("Share defrauded after the warning"), lambda f: f.totals.defrauded_after_rate, fmt_rate),
    ]
    rows = []
    for name, get, fmt in spec:
        now, before = pair(get, fmt)
        rows.append((name, now, before))
    for channel, n in fig.channels.items():
        before = str(last.channels.get(channel, 0)) if last is not None else ""
        rows.append(
            (
                _("Reached by %(channel)s", channel=labels.label(labels.CHANNELS, channel)),
                str(n),
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


def csv_bytes(fig: Figures, station_label: str) -> bytes:
    """UTF-8 with BOM and CRLF, so Excel opens it with the Chinese intact."""
    out = io.StringIO()
    w = _SafeWriter(out)
    w.writerow([_("Period"), f"{fig.period.start.isoformat()} – {fig.period.end.isoformat()}"])
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
    _breakdown(w, _("Officer"), [(b.label or _("Not assigned"), b) for b in fig.officers])
    w.writerow([])
    w.writerow([_("Officer"), _("Offers"), _("Accepts"), _("Declines"), _("Open warnings now")])
    for wl in fig.workload:
        w.writerow([wl.name, wl.offers, wl.accepts, wl.declines, wl.open_now])
    if fig.ranking:
        w.writerow([])
        w.writerow([_("Rank"), _("Station"), _("Received"), _("Persuaded"), _("Persuasion rate")])
        for n, b in enumerate(fig.ranking, 1):
            w.writerow([n, b.label, b.received, b.persuaded, fmt_rate(b.persuasion_rate)])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


BAR_H = 26
LABEL_W = 150
CHART_W = 480


def bar_chart(items: list[tuple[str, float, float | None]], title: str) -> Markup:
    """Horizontal bars (this period dark, last year light beneath), as inline SVG.

    Presentation attributes only (fill=, font-size=): the CSP forbids style attributes.
    """
    if not items:
        return Markup("")
    top = max([v for _l, v, _p in items] + [p or 0 for _l, _v, p in items] + [1])
    width = CHART_W - LABEL_W - 60
    height = len(items) * (BAR_H + 8) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {CHART_W} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}">'
    ]
    for i, (label, value, previous) in enumerate(items):
        y = 8 + i * (BAR_H + 8)
        w_now = round(width * value / top, 1)
        parts.append(
            f'<text x="0" y="{y + 17}" font-size="14" fill="#111">{escape(label)}</text>'
            f'<rect x="{LABEL_W}" y="{y}" width="{w_now}" height="16" fill="#0b3d91"/>'
            f'<text x="{LABEL_W + w_now + 4}" y="{y + 13}" font-size="13" fill="#111">'
            f"{escape(_fmt_num(value))}</text>"
        )
        if previous is not None:
            w_prev = round(width * previous / top, 1)
            parts.append(
                f'<rect x="{LABEL_W}" y="{y + 18}" width="{w_prev}" height="6" fill="#8aa4d6"/>'
            )
    parts.append("</svg>")
    # Every dynamic piece above went through escape(); the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704


def _fmt_num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
