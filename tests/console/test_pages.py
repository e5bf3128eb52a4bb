"""The page templates on their own: the health page shows whatever keys a gateway reports,
nested ones too, and everything a gateway says is escaped."""

from __future__ import annotations

from scanseal.console._app import _templates
from scanseal.console._serve import has_display


def _health(health: dict[str, object]) -> str:
    return _templates.get_template("health.html").render(
        health=health, me="lee", gateway="http://127.0.0.1:1", csrf="c", csrf_field="csrf",
        page="health",
    )  # fmt: skip


def test_nested_health_keys_are_shown() -> None:
    page = _health(
        {"status": "ok", "chain": {"head": 1234, "batch_lag": 2}, "scp": ["CT", "MR"], "x": None}
    )
    for text in ("<dt>chain</dt>", "<dt>head</dt>", "1234", "<dt>batch_lag</dt>", "<li><code>MR"):
        assert text in page
    assert 'id="health-status">status: ok' in page


def test_what_a_gateway_says_is_escaped() -> None:
    page = _health({"status": "<script>alert(1)</script>", "<b>key</b>": "&"})
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;b&gt;key&lt;/b&gt;" in page


def test_a_browser_is_opened_only_where_there_is_a_display() -> None:
    assert not has_display({"TERM": "xterm"}, "linux")  # w3m would spend the token
    assert has_display({"DISPLAY": ":0"}, "linux")
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"}, "freebsd14")
    assert has_display({}, "darwin")
    assert has_display({}, "win32")
