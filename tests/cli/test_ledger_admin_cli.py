"""`scanseal ledger deploy` and `scanseal ledger admin add|remove|list`: the contract's owner
appoints another department's gateway as an admin, on the embedded chain (in-process) and on a
real anvil node, where the second department's `scanseal serve` starts only once it is one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import FAST, PASSPHRASE, one_error_line
from devnode import ANVIL_FUNDER_KEY
from gateway_harness import GatewayProcess, World, make_world
from scanseal._lock import home_lock
from scanseal.crypto.identity import Identity, IdentityCard, Keystore
from scanseal.ledger import Ledger, LedgerConfig


@pytest.fixture
def owner_home(home: Path, run) -> Path:
    """A home whose gateway identity deployed the embedded contract; ``other`` is a card."""
    store = Keystore(home / "keys", scrypt_n=FAST)
    store.create("gateway", PASSPHRASE)
    store.create("lee", PASSPHRASE)
    (home / "other.card.json").write_text(Identity.generate("other").card.to_json(), "utf-8")
    result = run("ledger", "deploy")
    assert result.code == 0, result.err
    assert result.out.startswith("ImageRegistry 0x")
    return home


def _is_admin(home: Path, card: Path) -> bool:
    address = IdentityCard.load(card).address
    with Ledger.open(LedgerConfig(state_dir=home / "chain")) as ledger:
        return ledger.is_admin(address)


def test_the_owner_adds_lists_and_removes_an_admin(owner_home: Path, run) -> None:
    card = owner_home / "other.card.json"
    assert not _is_admin(owner_home, card)
    added = run("ledger", "admin", "add", str(card))
    assert added.code == 0, added.err
    assert "is now an admin; tx 0x" in added.out
    assert "fingerprint" in added.out
    assert _is_admin(owner_home, card)
    again = run("ledger", "admin", "add", str(card))
    assert (again.code, "already an admin" in again.out) == (0, True)
    listed = run("ledger", "admin", "list")
    address = Keystore(owner_home / "keys").card("gateway").address
    assert listed.out.splitlines()[0] == f"{address}  owner", listed.out
    other = IdentityCard.load(card).address
    assert listed.out.splitlines()[1:] == [f"{other}  admin"], listed.out
    removed = run("ledger", "admin", "remove", str(card))
    assert removed.code == 0, removed.err
    assert "is no longer an admin" in removed.out
    assert not _is_admin(owner_home, card)
    assert run("ledger", "admin", "list").out == f"{address}  owner\n"


def test_a_non_owner_is_refused_in_one_line(owner_home: Path, run, monkeypatch) -> None:
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")  # refused before any passphrase is needed
    card = owner_home / "other.card.json"
    result = run("ledger", "admin", "add", str(card), "--as", "lee")
    assert result.code == 4, result.err
    assert "does not own the ImageRegistry" in one_error_line(result)
    assert not _is_admin(owner_home, card)


def test_the_owner_stays_an_admin(owner_home: Path, run) -> None:
    address = Keystore(owner_home / "keys").card("gateway").address
    result = run("ledger", "admin", "remove", address)
    assert result.code == 2, result.err
    assert "is the owner, which is always an admin" in one_error_line(result)


def test_bad_cards_and_addresses_are_one_line(owner_home: Path, run) -> None:
    junk = owner_home / "junk.card.json"
    junk.write_text("{}", "utf-8")
    assert run("ledger", "admin", "add", str(junk)).code == 2
    result = run("ledger", "admin", "remove", "0x1234")
    assert result.code == 2
    assert "neither a card file nor a 0x address" in one_error_line(result)


def test_no_write_to_the_embedded_chain_while_serve_runs(owner_home: Path, run) -> None:
    card = owner_home / "other.card.json"
    with home_lock("serve"):
        result = run("ledger", "admin", "add", str(card))
    assert result.code == 5, result.err
    assert f"scanseal serve is already running on {owner_home} (pid {os.getpid()}" in (
        one_error_line(result)
    )
    assert not _is_admin(owner_home, card)


def test_without_a_contract_admin_commands_say_so(home: Path, run) -> None:
    Keystore(home / "keys", scrypt_n=FAST).create("gateway", PASSPHRASE)
    (home / "other.card.json").write_text(Identity.generate("other").card.to_json(), "utf-8")
    result = run("ledger", "admin", "add", str(home / "other.card.json"))
    assert result.code == 6, result.err
    assert "no ImageRegistry is deployed" in one_error_line(result)


# --- on anvil: a second department's gateway -------------------------------------------------


def _scanseal(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**world.env(), "SCANSEAL_LEDGER_FUNDER_KEY": ANVIL_FUNDER_KEY}
    command = [sys.executable, "-m", "scanseal", *args, "--config", str(world.config)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_on_anvil_a_second_department_serves_once_it_is_an_admin(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCANSEAL_LEDGER_FUNDER_KEY", ANVIL_FUNDER_KEY)  # gas for B's gateway
    chain = f'backend = "jsonrpc"\nurl = "{anvil_url}"'
    dept_a = make_world(tmp_path / "a", ["lee"], ledger_extra=chain)
    deployed = _scanseal(dept_a, "ledger", "deploy")
    assert deployed.returncode == 0, deployed.stderr
    contract = deployed.stdout.split()[1]
    dept_b = make_world(tmp_path / "b", ["radb"], ledger_extra=f'{chain}\ncontract = "{contract}"')
    b_card = dept_b.home / "gateway-b.card.json"
    b_card.write_text(dept_b.people["gateway"].card.to_json(), "utf-8")

    with pytest.raises(RuntimeError, match="is not an admin of the ImageRegistry"):
        GatewayProcess(dept_b).start()
    refused = _scanseal(dept_a, "ledger", "admin", "add", str(b_card), "--as", "lee")
    assert refused.returncode == 4, refused.stderr
    assert "does not own" in refused.stderr

    added = _scanseal(dept_a, "ledger", "admin", "add", str(b_card))
    assert added.returncode == 0, added.stderr
    gateway_b = GatewayProcess(dept_b).start()  # bootstrap needs admin: enrolls radb
    try:
        listed = _scanseal(dept_b, "ledger", "admin", "list")
        assert f"{dept_b.people['gateway'].address}  admin" in listed.stdout, listed.stderr
        removed = _scanseal(dept_a, "ledger", "admin", "remove", str(b_card))
        assert removed.returncode == 0, removed.stderr
    finally:
        gateway_b.stop()
    with pytest.raises(RuntimeError, match="is not an admin of the ImageRegistry"):
        GatewayProcess(dept_b).start()
