"""A defect (an exception ScanSeal does not define) inside a route of a real `scanseal serve`
child process: answered with one JSON 500 and logged once with its traceback, not a second time
by uvicorn (Starlette hands the exception on to the server after its handler answered)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway_harness import GatewayProcess, make_world

ABSENT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
DEFECT = '''"""Test hook: the gateway's verify route fails with a defect (KeyError)."""
from scanseal.service.gateway import Gateway


def _defect(self: object, record: str) -> object:
    raise KeyError("a defect")


Gateway.verify = _defect  # type: ignore[method-assign]
'''


def test_a_defect_is_answered_and_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DEFECT, "utf-8")  # imported by the child at start-up
    monkeypatch.setenv("PYTHONPATH", str(hook))
    world = make_world(tmp_path, ["ito"])
    gateway = GatewayProcess(world).start()
    try:
        answer = httpx.get(f"{gateway.url}/v1/records/{ABSENT}/verify", timeout=30)
        assert answer.status_code == 500
        assert answer.json()["error"] == "InternalError"
        assert httpx.get(f"{gateway.url}/v1/health", timeout=30).status_code == 200
    finally:
        gateway.stop()
    log = gateway.log.read_text("utf-8", "replace")
    assert log.count("unexpected KeyError answering a request") == 1, log[-3000:]
    assert log.count("Traceback") == 1, log[-3000:]
    assert "Exception in ASGI application" not in log, log[-3000:]
