"""A real anvil refusing or dropping the gateway's transactions, against a ``scanseal serve``
child process in per-record mode (every upload and fetch is a transaction of the gateway's
own account).

- the account drained (``anvil_setBalance`` to 0): uploads and fetches answer 503
  LedgerUnavailable with one line naming the account and what to do, never a 500;
- anvil stopped while an upload waits on it: 503, and once anvil is back the retry goes
  through and is registered once;
- in each case nothing is half-written: the refused upload, retried, answers like a first
  upload; every acknowledged record still fetches, opens and verifies, also after a restart.

The prober and the restartable anvil are the dependency-fault tests' (tests/fault_support.py).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from devnode import ANVIL_FUNDER_KEY
from fault_support import HANG, Anvil, Prober, Served, restartable_anvil
from gateway_harness import make_world

pytestmark = pytest.mark.integration


def _set_balance(anvil: Anvil, address: str, wei: int) -> None:
    """anvil's own cheat call: the account's balance set outright."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [address, hex(wei)]}
    answer = httpx.post(anvil.url, json=body, timeout=HANG).json()
    assert "error" not in answer, answer


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    yield from restartable_anvil(tmp_path_factory)


@pytest.fixture(scope="module")
def prober(anvil: Anvil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prober]:
    """A gateway on anvil (per-record mode) and the embedded block store."""
    root = tmp_path_factory.mktemp("refusals")
    world = make_world(
        root, ["ito", "lee"], ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil.url}"\ntimeout = 3'
    )
    gateway = Served(world, {"SCANSEAL_LEDGER_FUNDER_KEY": ANVIL_FUNDER_KEY}).start()
    probe = Prober(gateway, root / "scratch")
    probe.ok(probe.upload(probe.seal()))
    yield probe
    probe.close()
    gateway.stop()


def _balance(anvil: Anvil, address: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [address, "latest"]}
    return int(httpx.post(anvil.url, json=body, timeout=HANG).json()["result"], 16)


def test_drained_account_answers_503_naming_it(prober: Prober, anvil: Anvil) -> None:
    """No money for gas: 503 LedgerUnavailable naming the gateway's account and the remedy;
    funded again, the same upload goes through once and everything acknowledged serves."""
    account = prober.domain.gateway
    kept = _balance(anvil, account)
    sealed = prober.seal()
    _set_balance(anvil, account, 0)
    try:
        refused = prober.upload(sealed)
        prober.refused(refused, 503, "LedgerUnavailable")
        reason = refused.json()["reason"]
        assert account.lower() in reason.lower(), reason
        assert "cannot pay for gas" in reason, reason
        prober.refused(prober.fetch(next(iter(prober.acked))), 503, "LedgerUnavailable")
    finally:
        _set_balance(anvil, account, kept)
    first = prober.upload(sealed)
    prober.ok(first)
    again = prober.upload(sealed)
    prober.ok(again)
    assert again.json()["ledger"] == first.json()["ledger"], "registered twice"
    prober.nothing_lost()


def test_anvil_stopped_mid_upload(prober: Prober, anvil: Anvil) -> None:
    """anvil frozen (SIGSTOP) while an upload is on its way to it, then stopped for good: the
    upload answers 503 within the ledger timeout; anvil back on the same chain, the retry
    answers 200 once and every acknowledged record serves, also after a gateway restart."""
    assert anvil.process is not None
    sealed = prober.seal()
    anvil.process.send_signal(signal.SIGSTOP)  # connections accepted, never answered
    answers: list[httpx.Response] = []
    upload = threading.Thread(target=lambda: answers.append(prober.upload(sealed)))
    upload.start()
    time.sleep(1.0)
    anvil.process.send_signal(signal.SIGCONT)  # so that the SIGTERM lands: state dumped
    anvil.stop()
    upload.join(HANG)
    try:
        assert answers, "the upload did not return"
        if answers[0].status_code != 200:  # anvil may have mined it in its last moment
            prober.refused(answers[0], 503, "LedgerUnavailable")
        prober.refused(prober.upload(prober.seal()), 503, "LedgerUnavailable")
    finally:
        anvil.start()
    first = prober.upload(sealed)
    prober.ok(first)
    prober.ok(prober.upload(sealed))
    prober.nothing_lost()
    prober.gateway.stop()
    prober.gateway.start()
    prober.nothing_lost()
