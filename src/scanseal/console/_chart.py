"""Accesses per day as an inline SVG bar chart, drawn here so the page needs no chart library.

One bar per UTC day from the first access to the last (empty days included, so gaps show),
allowed accesses in one colour and denied ones stacked above them in another; the y axis is
labelled with the largest day's count. The markup is built from numbers and ISO dates only and
escaped all the same.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from html import escape
from typing import Any, Final

WIDTH: Final = 640
HEIGHT: Final = 180
MARGIN: Final = 28
MAX_DAYS: Final = 120
MAX_BAR: Final = 36.0


def accesses_per_day(events: list[dict[str, Any]]) -> list[tuple[date, int, int]]:
    """(day, allowed, refused) for every day between the first and last access, oldest first
    (the most recent ``MAX_DAYS`` days when the span is longer)."""
    allowed: Counter[date] = Counter()
    refused: Counter[date] = Counter()
    for event in events:
        if event.get("action") != "access" or not isinstance(event.get("time"), str):
            continue
        day = date.fromisoformat(str(event["time"])[:10])
        (allowed if event.get("outcome") == "success" else refused)[day] += 1
    days = sorted(set(allowed) | set(refused))
    if not days:
        return []
    first = max(days[0], days[-1] - timedelta(days=MAX_DAYS - 1))
    span = (days[-1] - first).days + 1
    every = [first + timedelta(days=i) for i in range(span)]
    return [(day, allowed[day], refused[day]) for day in every]


def timeline_svg(events: list[dict[str, Any]]) -> str:
    """The chart's ``<svg>`` element, or an empty string when there was no access."""
    days = accesses_per_day(events)
    if not days:
        return ""
    top = max(a + r for _day, a, r in days) or 1
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = plot_w / len(days)
    bar = min(MAX_BAR, max(1.0, step * 0.8))
    parts = [
        f'<svg class="timeline" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>accesses per day, {escape(days[0][0].isoformat())} to "
        f"{escape(days[-1][0].isoformat())}</title>",
        f'<line class="axis" x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}"/>',
        f'<text class="label" x="4" y="{MARGIN + 4}">{top}</text>',
        f'<text class="label" x="4" y="{HEIGHT - MARGIN}">0</text>',
    ]
    for i, (day, ok, refused) in enumerate(days):
        x = MARGIN + i * step + (step - bar) / 2
        ok_h, refused_h = plot_h * ok / top, plot_h * refused / top
        base = HEIGHT - MARGIN
        label = escape(f"{day.isoformat()}: {ok} allowed, {refused} denied")
        parts.append(f'<g class="day" data-day="{escape(day.isoformat())}"><title>{label}</title>')
        if ok:
            parts.append(_rect("allowed", x, base - ok_h, bar, ok_h))
        if refused:
            parts.append(_rect("denied", x, base - ok_h - refused_h, bar, refused_h))
        parts.append("</g>")
    parts.append(
        f'<text class="label" x="{MARGIN}" y="{HEIGHT - 8}">{escape(days[0][0].isoformat())}'
        f'</text><text class="label end" x="{WIDTH - MARGIN}" y="{HEIGHT - 8}" '
        f'text-anchor="end">{escape(days[-1][0].isoformat())}</text></svg>'
    )
    return "".join(parts)


def _rect(kind: str, x: float, y: float, w: float, h: float) -> str:
    return f'<rect class="{kind}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
