"""The gateway on a real Ethereum node by configuration: anvil over JSON-RPC, per-record mode.

Every fetch attempt is then a `logAccess` transaction on anvil; the audit trail read back
through the gateway carries their transaction hashes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydicom.data import get_testdata_file

from devnode import ANVIL_FUNDER_KEY, anvil_binary, running_anvil, spend_nonces
from gateway_harness import PASSPHRASE, GatewayProcess, World, make_world
from scanseal.client import GatewayClient
from scanseal.crypto.identity import Keystore
from scanseal.errors import AccessDenied
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.storage import CID

pytestmark = pytest.mark.integration
CT = Path(str(get_testdata_file("CT_small.dcm")))


@pytest.fixture(scope="module")
def anvil():
    binary = anvil_binary()
    if binary is None:
        message = "anvil is not installed: run `make install-contracts`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with running_anvil(binary) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(anvil: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module):
    world: World = make_world(
        tmp_path_factory.mktemp("anvil"),
        ["ito", "lee"],
        ["mallory"],
        ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil}"',
    )
    monkeypatch_module.setenv("SCANSEAL_LEDGER_FUNDER_KEY", ANVIL_FUNDER_KEY)
    process = GatewayProcess(world).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_send_fetch_deny_audit_on_anvil(gateway: GatewayProcess, tmp_path: Path) -> None:
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        answer = ito.send(CT, [people["lee"].card], tmp_path)
        assert str(answer["ledger"]["tx_hash"]).startswith("0x")
        record = str(answer["manifest_cid"])
        assert ito.health()["chain_id"] == 31337  # anvil's, not the embedded chain's
    with GatewayClient(gateway.url, people["lee"]) as lee:
        assert lee.fetch(record, tmp_path / "lee.dcm").path.read_bytes() == CT.read_bytes()
    with GatewayClient(gateway.url, people["mallory"]) as mallory, pytest.raises(AccessDenied):
        mallory.fetch(record, tmp_path / "m.dcm")
    with GatewayClient(gateway.url, people["ito"]) as ito:
        trail = ito.audit(record)
    accesses = [e for e in trail if e["action"] == "access"]
    assert [e["allowed"] for e in accesses] == [True, False]
    assert all(str(e["evidence"]).startswith("0x") for e in trail)


@pytest.fixture(scope="module")
def outside_owner(anvil: str, tmp_path_factory: pytest.TempPathFactory):
    """A registry deployed by a hospital admin who is not the gateway (and keeps its own key)."""
    config = LedgerConfig(
        backend="jsonrpc", url=anvil, funder_key=ANVIL_FUNDER_KEY,
        state_dir=tmp_path_factory.mktemp("owner-chain"),
    )  # fmt: skip
    owner = Account.create()
    ledger = Ledger.open(config, deployer=owner)
    yield ledger, owner
    ledger.close()


@pytest.fixture(scope="module")
def batched_gateway(
    anvil: str, outside_owner: tuple[Ledger, LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module,
):  # fmt: skip
    owner_ledger, owner = outside_owner
    contract = owner_ledger.address
    world: World = make_world(
        tmp_path_factory.mktemp("anvil-batched"),
        ["ito", "lee"],
        mode="batched",
        ledger_extra=f'backend = "jsonrpc"\nurl = "{anvil}"\ncontract = "{contract}"',
    )
    owner_ledger.set_admin(owner, world.people["gateway"].address)
    monkeypatch_module.setenv("SCANSEAL_LEDGER_FUNDER_KEY", ANVIL_FUNDER_KEY)
    process = GatewayProcess(world).start()
    yield process
    process.stop()


def test_revoke_sent_straight_to_the_chain_denies_the_next_fetch(
    batched_gateway: GatewayProcess, outside_owner: tuple[Ledger, LocalAccount], tmp_path: Path
) -> None:
    """Batched mode decides from the mirrored grant table: a revocation the gateway never saw
    (the contract owner's own transaction on the node) must still refuse the very next fetch."""
    people = batched_gateway.world.people
    owner_ledger, owner = outside_owner
    with GatewayClient(batched_gateway.url, people["ito"]) as ito:
        record = str(ito.send(CT, [people["lee"].card], tmp_path)["manifest_cid"])
    with GatewayClient(batched_gateway.url, people["lee"]) as lee:
        assert lee.fetch(record, tmp_path / "lee.dcm").path.read_bytes() == CT.read_bytes()
        owner_ledger.revoke(owner, CID.parse(record).to_bytes(), people["lee"].address)
        with pytest.raises(AccessDenied, match="revoked"):
            lee.fetch(record, tmp_path / "again.dcm")
    assert not (tmp_path / "again.dcm").exists()


def test_the_gateway_account_used_elsewhere_does_not_fail_the_next_transaction(
    anvil: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """The gateway's nonce is cached; a transaction from its key outside the gateway makes it
    stale, and the gateway re-reads it from the node instead of failing the request."""
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        ito.send(CT, [people["lee"].card], tmp_path / "one")  # the gateway's nonce is cached
        for attempt in range(2):
            spend_nonces(anvil, people["gateway"].account)
            answer = ito.send(CT, [people["lee"].card], tmp_path / f"again{attempt}")
            assert str(answer["ledger"]["tx_hash"]).startswith("0x")
    with GatewayClient(gateway.url, people["lee"]) as lee:
        record = str(answer["manifest_cid"])
        assert lee.fetch(record, tmp_path / "lee.dcm").path.read_bytes() == CT.read_bytes()


def test_a_gateway_that_is_not_the_owner_leaves_a_rotated_card_to_the_owner(
    batched_gateway: GatewayProcess, outside_owner: tuple[Ledger, LocalAccount], tmp_path: Path
) -> None:
    """An admin gateway cannot overwrite a registered card (the contract's owner-only rule): a
    rotated member card dropped in is logged as the owner's to register, the gateway keeps
    serving, and once the owner registered it a SIGHUP has the gateway use it."""
    world = batched_gateway.world
    owner_ledger, owner = outside_owner
    keystore = Keystore(world.home / "keys", scrypt_n=2**10)
    rotated = keystore.load("lee", PASSPHRASE).rotated()
    keystore.replace(rotated, PASSPHRASE)
    world.cards["lee"].write_text(rotated.card.to_json(), "utf-8")
    assert batched_gateway.process is not None
    batched_gateway.process.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert "only the contract owner" in batched_gateway.log.read_text()
    assert owner_ledger.identity_of(rotated.address) != rotated.card.card_hash

    owner_ledger.register_identity(owner, rotated.address, rotated.card.card_hash)
    batched_gateway.process.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    people = world.people
    with GatewayClient(batched_gateway.url, people["ito"]) as ito:
        record = str(ito.send(CT, [rotated.card], tmp_path)["manifest_cid"])
    with GatewayClient(batched_gateway.url, rotated) as lee:
        assert lee.fetch(record, tmp_path / "lee.dcm").path.read_bytes() == CT.read_bytes()
