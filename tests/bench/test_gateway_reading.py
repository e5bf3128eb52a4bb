"""The gateway section judges the issue's target (100 % and p95 ≤ 2 s at 500 clients) from the
bench's rows, in its reading and in the summary claim. Rendering only, no measuring."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

from evaluation import components_gateway as gateway


def _result(*levels: tuple[int, float, float]) -> dict[str, object]:
    rows = [
        {"gateway": {"clients": clients, "success_rate": success, "p95": p95}, "baseline": {}}
        for clients, success, p95 in levels
    ]
    return {"command": "python bench/gateway_load.py", "mode": "batched", "results": rows}


@pytest.mark.parametrize(
    ("at_500", "verdict"),
    [
        ((500, 1.0, 2.0), "met"),  # exactly on the target
        ((500, 1.0, 2.01), "not met"),  # p95 just over
        ((500, 0.999, 1.2), "not met"),  # one fetch failed
    ],
)
def test_reading_and_claim_judge_500_clients(
    at_500: tuple[int, float, float], verdict: str, tmp_path: Path
) -> None:
    result = _result((200, 1.0, 0.5), at_500, (1000, 0.5, 9.0))  # 1,000 clients never judged
    text = gateway.render(result, tmp_path)
    assert f"p95 ≤ 2 s at 500 clients): **{verdict}**" in text
    (claim,) = gateway.claims(result)
    assert "500 concurrent clients" in claim["what"]
    assert claim["met"] is (verdict == "met")


def test_without_500_clients_the_target_is_not_judged(tmp_path: Path) -> None:
    result = _result((5, 1.0, 0.1))
    assert "not measured in this run" in gateway.render(result, tmp_path)
