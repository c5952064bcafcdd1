"""Server-side SVG charts: no JavaScript, no third-party code, readable with a screen reader.

Each function takes plain numbers and returns one self-contained <svg> element. All text that
reaches the markup is escaped here, so the result can be placed in a page as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

INK = "#1d2330"
MUTED = "#5f6b7a"
LINE = "#dde2ea"
ACCENT = "#2457d6"
BAD = "#c23a3a"
WARN = "#b86e00"


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (may be thinned out when bars are many)
    value: float | None  # None: nothing to draw (no one was expected)
    title: str  # the tooltip and the accessible description of this bar


def _fmt(x: float) -> str:
    """A coordinate in the SVG (always a dot)."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _num(x: float) -> str:
    """A number a person reads, in their locale (one decimal at most): "66.7" in English, "66,7" in Croatian."""
    x = round(x, 1)
    return number_format(x, 0 if x == int(x) else 1)


def _svg(width: int, height: int, title: str, desc: str, body: list[str], css_class: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every text node below went through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{css_class}-title {css_class}-desc" '
        f'font-family="system-ui, sans-serif" font-size="12">'
        f'<title id="{css_class}-title">{escape(title)}</title><desc id="{css_class}-desc">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _bars(
    bars: Sequence[Bar], *, y_max: float, y_ticks: Sequence[float], y_label: str, colour_of: list[str],
    width: int, height: int, reference: tuple[float, str] | None = None, tick_suffix: str = "",
) -> list[str]:
    left, right, top, bottom = 56, 12, 14, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    body: list[str] = []

    def y(v: float) -> float:
        return top + plot_h - (v / y_max) * plot_h if y_max else top + plot_h

    for tick in y_ticks:
        ty = _fmt(y(tick))
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ty}" y2="{ty}" stroke="{LINE}"/>')
        body.append(
            f'<text x="{left - 6}" y="{_fmt(y(tick) + 4)}" text-anchor="end" fill="{MUTED}">'
            f"{escape(number_format(round(tick), 0) + tick_suffix)}</text>"
        )
    body.append(
        f'<text x="12" y="{_fmt(top + plot_h / 2)}" transform="rotate(-90 12 {_fmt(top + plot_h / 2)})" '
        f'text-anchor="middle" fill="{MUTED}">{escape(y_label)}</text>'
    )
    n = max(len(bars), 1)
    slot = plot_w / n
    bar_w = max(min(slot * 0.7, 48), 2)
    every = max(1, math.ceil(n / max(plot_w // 64, 1)))  # thin the x labels so they never overlap
    for i, bar in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        if bar.value is not None:
            top_y = y(bar.value)
            h = max(top + plot_h - top_y, 0.0)
            body.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(top_y)}" width="{_fmt(bar_w)}" height="{_fmt(h)}" rx="2" '
                f'fill="{colour_of[i]}"><title>{escape(bar.title)}</title></rect>'
            )
        else:
            body.append(
                f'<text x="{_fmt(x + bar_w / 2)}" y="{_fmt(top + plot_h - 4)}" text-anchor="middle" fill="{MUTED}">'
                f"\u2013<title>{escape(bar.title)}</title></text>"
            )
        if i % every == 0:
            body.append(
                f'<text x="{_fmt(left + i * slot + slot / 2)}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'fill="{MUTED}">{escape(bar.label)}</text>'
            )
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{INK}"/>')
    if reference is not None:
        value, label = reference
        ry = _fmt(y(value))
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{ry}" y2="{ry}" stroke="{BAD}" stroke-dasharray="5 4"/>'
            f'<text x="{left + plot_w}" y="{_fmt(y(value) - 4)}" text-anchor="end" fill="{BAD}">{escape(label)}</text>'
        )
    return body


def turnout_chart(bars: Sequence[Bar], *, threshold: float, width: int = 480, height: int = 240) -> SafeString:
    """Turnout per session over the term, as percentages, with the low-attendance threshold drawn."""
    values = [b.value for b in bars if b.value is not None]
    desc = (
        ngettext(
            "%(n)s session; turnout from %(low)s %% to %(high)s %%.",
            "%(n)s sessions; turnout from %(low)s %% to %(high)s %%.",
            len(bars),
        ) % {"n": len(bars), "low": _num(min(values) * 100), "high": _num(max(values) * 100)}
        if values else _("No sessions held in this period.")
    )
    colours = [BAD if b.value is not None and b.value < threshold else ACCENT for b in bars]
    scaled = [Bar(b.label, None if b.value is None else b.value * 100, b.title) for b in bars]
    body = _bars(
        scaled, y_max=100, y_ticks=[0, 25, 50, 75, 100], y_label=_("turnout %"), colour_of=colours,
        width=width, height=height, reference=(threshold * 100, f"{_num(threshold * 100)} %"),
        tick_suffix="%",
    )
    return _svg(width, height, _("Turnout per session"), desc, body, "chart-turnout")


def rate_histogram(rates: Sequence[float], *, threshold: float, width: int = 480, height: int = 240) -> SafeString:
    """How many students fall in each tenth of attendance rate (the top bin includes 100 %)."""
    counts = [0] * 10
    for rate in rates:
        counts[min(int(rate * 10), 9)] += 1
    bars = []
    for i, count in enumerate(counts):
        upper = 100 if i == 9 else (i + 1) * 10
        span = _("%(low)s to %(high)s %%") % {"low": i * 10, "high": upper if i == 9 else upper - 1}
        students = ngettext("%(n)s student", "%(n)s students", count) % {"n": count}
        bars.append(Bar(label=f"{i * 10}%", value=float(count), title=f"{span}: {students}"))
    top = max(counts) if rates else 0
    step = max(1, math.ceil(top / 4)) if top else 1
    y_max = float(step * 4)
    colours = [BAD if (i + 1) * 10 <= threshold * 100 else ACCENT for i in range(10)]
    desc = ngettext(
        "%(n)s student with a rate; most common range %(range)s.",
        "%(n)s students with a rate; most common range %(range)s.",
        len(rates),
    ) % {"n": len(rates), "range": bars[counts.index(top)].title} if rates \
        else _("No student has an attendance rate yet.")
    body = _bars(
        bars, y_max=y_max, y_ticks=[step * k for k in range(5)], y_label=_("students"), colour_of=colours,
        width=width, height=height,
    )
    return _svg(width, height, _("Distribution of attendance rates"), desc, body, "chart-rates")
