"""The record page compares each batched inclusion proof with the root anchored on chain (the
user's [ledger], as ``scanseal proof verify`` does), against a real ``scanseal console`` and
``scanseal serve``: honest proofs hold; a gateway that forges a proof (a root it made up, which
recomputes) or alters one is caught; a chain that cannot be read is said, never ticked green."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console_harness import ConsoleProcess
from gateway_harness import GatewayProcess, World, free_port
from mitm_proxy import MitmProxy, Plan
from scanseal.integrity.merkle import leaf_hash


class ForgeProofs(Plan):
    """A gateway's answer with every batched proof replaced: ``forge`` a proof of a one-leaf
    log whose root is the leaf itself (it recomputes, and was never anchored), else the real
    proof with one bit of its root flipped."""

    def __init__(self, forge: bool) -> None:
        super().__init__("response", lambda body: (0, len(body)), "flip", random.Random(0))
        self.forge = forge

    def mutate(self, body: bytes) -> bytes:
        try:
            answer = json.loads(body)
        except ValueError:
            return body
        events = answer.get("events") if isinstance(answer, dict) else answer
        if not isinstance(events, list):
            return body
        for event in events:
            if isinstance(event, dict) and isinstance(event.get("proof"), dict):
                self.applied = True
                event["proof"] = self._altered(event["proof"])
        return json.dumps(answer).encode()

    def _altered(self, proof: dict[str, Any]) -> dict[str, Any]:
        if self.forge:
            entry = bytes.fromhex(proof["entry"].removeprefix("0x"))
            root = "0x" + leaf_hash(entry).hex()
            return {**proof, "index": 0, "size": 1, "path": [], "root": root}
        root = bytearray.fromhex(proof["root"].removeprefix("0x"))
        root[0] ^= 1
        return {**proof, "root": "0x" + root.hex()}


def _proofs(console: ConsoleProcess, record: str) -> list[str]:
    with httpx.Client(base_url=console.base, timeout=120) as client:
        assert client.get(console.url, follow_redirects=False).status_code == 303
        page = client.get(f"/records/{record}")
        assert page.status_code == 200, page.text
    return re.findall(r'<td class="proof">(.*?)</td>', page.text, re.S)


@pytest.fixture
def started(world: World, gateway: GatewayProcess) -> Iterator[list[ConsoleProcess]]:
    consoles: list[ConsoleProcess] = []
    yield consoles
    for console in consoles:
        console.stop()


def _console(
    world: World, gateway: GatewayProcess, started: list[ConsoleProcess], **env: str
) -> ConsoleProcess:
    console = ConsoleProcess(world, gateway, "lee")
    console.env.update(env)
    started.append(console)
    return console


def test_honest_proofs_hold_against_the_anchored_root(record: str, console: ConsoleProcess) -> None:
    proofs = _proofs(console, record)
    held = [p for p in proofs if "✔ holds" in p]
    assert len(held) >= 2  # the stored record and an access
    assert all("anchored on chain as anchor #" in p for p in held)
    assert not any("FAILED" in p or "not checked" in p for p in proofs), proofs


@pytest.mark.parametrize("forge", [True, False], ids=["forged-root", "altered-root"])
def test_a_proof_the_gateway_altered_does_not_match(
    world: World, gateway: GatewayProcess, record: str, started: list[ConsoleProcess],
    forge: bool,
) -> None:  # fmt: skip
    proxy = MitmProxy(gateway.port).start()
    try:
        console = _console(world, gateway, started)
        console.gateway_url = proxy.url
        console.start()
        plan = ForgeProofs(forge)
        proxy.plan = plan
        proofs = _proofs(console, record)
    finally:
        proxy.stop()
    assert plan.applied
    batched = [p for p in proofs if p not in ("transaction", "pending")]
    assert len(batched) >= 2
    assert not any("✔" in p or "holds" in p for p in batched), batched
    expected = "does not match the root anchored on chain" if forge else "does not recompute"
    assert all("✘ FAILED" in p and expected in p for p in batched), batched


def test_a_chain_that_cannot_be_read_is_said_not_ticked(
    world: World, gateway: GatewayProcess, record: str, started: list[ConsoleProcess]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    console = _console(
        world, gateway, started, SCANSEAL_LEDGER_BACKEND="jsonrpc", SCANSEAL_LEDGER_URL=dead
    )
    proofs = _proofs(console.start(), record)
    batched = [p for p in proofs if p not in ("transaction", "pending")]
    assert len(batched) >= 2
    assert not any("✔" in p or "holds" in p for p in batched), batched
    assert all("? anchor not checked: " in p and dead in p for p in batched), batched
