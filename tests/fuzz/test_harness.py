"""The harness itself: what passes, what fails, what is known, and that inputs are reproducible."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from starlette.responses import Response

from fuzz import _harness
from fuzz.targets import Http, HttpCase, TestClient
from scanseal.errors import IntegrityError

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


class Toy(_harness.Target):
    """Refuses with a ScanSealError, or escapes with whatever the input names."""

    name = "toy"

    def generate(self, mutator: _harness.Mutator) -> bytes:
        return mutator.bytes_(b"scanseal", rounds=2)

    def run(self, case: bytes) -> None:
        kind = _kind(case)
        if kind == 0:
            raise IntegrityError("refused")
        if kind == 1:
            raise ValueError("a library error escaped")
        if kind == 2:
            raise BaseExceptionLike("a decoder panicked")


def _kind(case: bytes) -> int:
    return case[0] % 4 if case else 0


class BaseExceptionLike(BaseException):
    """Like pyo3's PanicException: not an Exception at all."""


def test_scanseal_errors_pass_and_everything_else_fails() -> None:
    outcome = _harness.run(Toy(), 200, seed=3)
    assert outcome.inputs == 200
    kinds = [_kind(_harness.case_for(Toy(), 3, i)) for i in range(200)]
    assert outcome.failures == kinds.count(1) + kinds.count(2) > 0
    assert {s.split(" ")[0] for s in outcome.distinct} == {"ValueError", "BaseExceptionLike"}
    finding = next(iter(outcome.distinct.values()))
    assert "--target toy --seed 3 --index" in finding.report(stateful=False)


def test_known_issues_are_counted_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    known = (_harness.KnownIssue("toy-value", "ValueError", "tests/fuzz/test_harness.py"),)
    monkeypatch.setattr(_harness, "KNOWN_ISSUES", known)
    outcome = _harness.run(Toy(), 200, seed=3)
    assert outcome.known["toy-value"] > 0
    assert {s.split(" ")[0] for s in outcome.distinct} == {"BaseExceptionLike"}


def test_inputs_are_a_function_of_target_seed_and_index() -> None:
    first = [_harness.case_for(Toy(), 1, i) for i in range(50)]
    assert first == [_harness.case_for(Toy(), 1, i) for i in range(50)]
    assert first != [_harness.case_for(Toy(), 2, i) for i in range(50)]


def test_json_mutations_nest_past_the_readers_bound_and_no_further_than_max_depth() -> None:
    mutator = _harness.Mutator(_harness.random.Random(0))
    deepest = []
    for _ in range(300):
        text = mutator.json_text(mutator.json_value({"a": [1, {"b": "c"}]}))
        deepest.append(max(_depths(text)))
    assert max(deepest) <= _harness.MAX_DEPTH + 3 * _harness.STRUCTURE_DEPTH + 2
    assert max(deepest) >= _harness.MAX_DEPTH  # deep nesting is fuzzed for real
    assert sum(d > 32 for d in deepest) > 10  # past the strict reader's bound often


def test_toml_mutations_nest_deep_too() -> None:
    mutator = _harness.Mutator(_harness.random.Random(0))
    seeds = [b"[gateway]\nport = 8470\n"]
    deepest = max(max(_depths(mutator.toml_doc(seeds))) for _ in range(300))
    assert deepest >= _harness.MAX_DEPTH


def _depths(text: bytes) -> list[int]:
    depth, seen = 0, [0]
    for byte in text:
        depth += (byte in b"[{") - (byte in b"]}")
        seen.append(depth)
    return seen


def test_a_5xx_answer_is_a_failure() -> None:
    async def broken(scope, receive, send) -> None:
        await Response("boom", status_code=502)(scope, receive, send)

    target = Http()
    target.gw = type("Gw", (), {"http": TestClient(broken)})()  # type: ignore[assignment]
    with pytest.raises(_harness.Failure, match="HTTP 502"):
        target.run(HttpCase("GET", "/v1/health", (), b""))


@pytest.mark.parametrize(
    ("limit", "work", "message"),
    [
        ("TIMEOUT = 1.0", "time.sleep(4)", "hung for more than 1 s"),
        ("RSS_LIMIT = 64 << 20", "hold.append(bytearray(256 << 20)); time.sleep(2)", "RSS grew"),
    ],
    ids=["hang", "memory"],
)
def test_a_hang_or_a_memory_blow_up_ends_the_process_with_its_reproducer(
    limit: str, work: str, message: str
) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from fuzz import _harness
        _harness.{limit}
        hold = []
        class Slow(_harness.Target):
            name = "slow"
            def generate(self, mutator):
                return b"x"
            def run(self, case):
                {work}
        _harness.run(Slow(), 1, seed=0)
        print("not stopped")
        """
    )
    env = {"PYTHONPATH": f"{SRC}:{TESTS}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 70, done.stderr
    assert message in done.stderr
    assert "--target slow --seed 0 --index 0" in done.stderr
    assert "not stopped" not in done.stdout
