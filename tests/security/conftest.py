"""The attack suite's shared pieces: the results table printed at the end of the run."""

from __future__ import annotations

import pytest

from gateway_harness import RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("ScanSeal security suite (the paper's Table 3 as attacks)")
    write(f"{'attack':<44} {'attempts':>8} {'blocked':>8} {'evidence':>9}  evidence is")
    for name, (attempts, blocked, evidence, meaning) in RESULTS.items():
        write(f"{name:<44} {attempts:>8} {blocked:>8} {evidence:>9}  {meaning}")
