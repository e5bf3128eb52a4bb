"""The accesses-per-day chart: one bar per day, gaps kept, denied stacked on allowed."""

from __future__ import annotations

from datetime import date
from xml.etree import ElementTree

from scanseal.console._chart import accesses_per_day, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def _access(day: str, outcome: str = "success") -> dict[str, object]:
    return {"action": "access", "time": f"{day}T10:00:00Z", "outcome": outcome}


def test_days_between_first_and_last_access_with_gaps() -> None:
    events = [
        _access("2026-12-01"), _access("2026-12-01"), _access("2026-12-03", "denied"),
        _access("2026-12-03", "unauthenticated"), _access("2026-12-03"),
        {"action": "granted", "time": "2026-11-01T00:00:00Z", "outcome": "success"},
    ]  # fmt: skip
    assert accesses_per_day(events) == [
        (date(2026, 12, 1), 2, 0),
        (date(2026, 12, 2), 0, 0),
        (date(2026, 12, 3), 1, 2),
    ]


def test_svg_bars_scale_to_the_busiest_day() -> None:
    svg = ElementTree.fromstring(timeline_svg([_access("2026-12-01"), _access("2026-12-02")] * 2))
    days = svg.findall(f"{SVG}g")
    assert [g.get("data-day") for g in days] == ["2026-12-01", "2026-12-02"]
    heights = {float(r.get("height", "0")) for r in svg.iter(f"{SVG}rect")}
    assert len(heights) == 1  # two accesses each day: equal bars, the full plot height
    assert svg.findall(f"{SVG}g/{SVG}rect")[0].get("class") == "allowed"


def test_denied_is_drawn_above_allowed() -> None:
    svg = ElementTree.fromstring(
        timeline_svg([_access("2026-12-01"), _access("2026-12-01", "denied")])
    )
    allowed, denied = svg.findall(f"{SVG}g/{SVG}rect")
    assert (allowed.get("class"), denied.get("class")) == ("allowed", "denied")
    assert float(denied.get("y", "0")) < float(allowed.get("y", "0"))


def test_no_access_no_chart() -> None:
    assert timeline_svg([{"action": "stored", "time": "2026-12-01T00:00:00Z"}]) == ""
