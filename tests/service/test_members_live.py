"""Members enrolled while ``scanseal serve`` runs, and a member's key rotation reaching its
gateway and the ledger, against a real gateway child process (tests/gateway_harness.py).

A card dropped into the members directory is enrolled on SIGHUP (at the gateway's next tick) or
at the next request from an address it does not know (at most one scan per RESCAN_SECONDS). A
rotated card copied over the old one is registered in its place (the gateway owns the embedded
chain's contract): what was sealed to the old card still opens, an upload sealed to the old card
is refused, and a grant naming the new card passes the ledger's card-hash check.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import Result
from corpus import make_png
from gateway_harness import PASSPHRASE, GatewayProcess, World, cli_against, make_world, served
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.service.members import RESCAN_SECONDS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    made = make_world(tmp_path_factory.mktemp("members"), ["ito", "lee"])
    keystore = Keystore(made.home / "keys", scrypt_n=2**10)
    for name in ("okafor", "ruiz"):  # identities the gateway does not know yet
        made.cards[name] = made.home.parent / f"{name}.card.json"
        made.cards[name].write_text(keystore.create(name, PASSPHRASE).card.to_json())
    return made


@pytest.fixture(scope="module")
def gateway(world: World) -> Iterator[GatewayProcess]:
    yield from served(world)


@pytest.fixture
def remote(world: World, gateway: GatewayProcess, monkeypatch, capsys):
    return cli_against(world, gateway, monkeypatch, capsys)


def _send(remote, source: Path, card: Path, sender: str, workdir: Path) -> Result:
    workdir.mkdir(exist_ok=True)
    return remote("send", str(source), "--to", str(card), "--as", sender, "--workdir", str(workdir))


def _record(result: Result) -> str:
    assert result.code == 0, result.err
    (record,) = re.findall(r"record (b[a-z2-7]+)", result.out)
    return record


def _hup(gateway: GatewayProcess) -> None:
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)
    time.sleep(1.5)  # the scan runs at the next tick (tick_seconds = 0.5)


def test_a_card_dropped_in_is_enrolled_on_sighup(remote, world, gateway, tmp_path):
    source = make_png(tmp_path / "scan.png")
    refused = _send(remote, source, world.cards["lee"], "okafor", tmp_path / "out")
    assert refused.code == 4, refused.err  # a stranger: not registered
    assert "not a registered identity" in refused.err
    shutil.copy(world.cards["okafor"], world.home / "members" / "okafor.card.json")
    _hup(gateway)  # within RESCAN_SECONDS of the refused request's scan: SIGHUP is what enrols
    record = _record(_send(remote, source, world.cards["lee"], "okafor", tmp_path / "out"))
    fetched = remote("fetch", record, "-o", str(tmp_path / "got.png"), "--as", "lee")
    assert fetched.code == 0, fetched.err
    assert gateway.process is not None
    assert gateway.process.poll() is None  # the same process throughout


def test_a_card_dropped_in_is_enrolled_at_the_next_unknown_request(remote, world, tmp_path):
    shutil.copy(world.cards["ruiz"], world.home / "members" / "ruiz.card.json")
    time.sleep(RESCAN_SECONDS + 0.5)  # whatever scan came last, the next one is allowed
    source = make_png(tmp_path / "scan.png")
    record = _record(_send(remote, source, world.cards["ito"], "ruiz", tmp_path / "out"))
    fetched = remote("fetch", record, "-o", str(tmp_path / "got.png"), "--as", "ito")
    assert fetched.code == 0, fetched.err


def test_a_rotated_member_card_reaches_the_gateway_and_the_ledger(remote, world, gateway, tmp_path):
    source = make_png(tmp_path / "scan.png")
    old_card = tmp_path / "lee.old.json"
    shutil.copy(world.cards["lee"], old_card)
    before = _record(_send(remote, source, old_card, "ito", tmp_path / "out"))
    only_okafor = _record(_send(remote, source, world.cards["okafor"], "ito", tmp_path / "out2"))

    new_card = tmp_path / "lee.new.json"
    rotated = remote("keys", "rotate", "lee", "-o", str(new_card))
    assert rotated.code == 0, rotated.err
    assert IdentityCard.load(new_card).card_hash != IdentityCard.load(old_card).card_hash
    shutil.copy(new_card, world.cards["lee"])  # over the old card in the members directory
    _hup(gateway)

    fetched = remote("fetch", before, "-o", str(tmp_path / "before.png"), "--as", "lee")
    assert fetched.code == 0, fetched.err  # sealed to the old card: opens with the retired keys
    assert (tmp_path / "before.png").read_bytes() == source.read_bytes()

    stale = _send(remote, source, old_card, "ito", tmp_path / "out3")
    assert stale.code == 2
    assert "sealed to keys that are not on the card of lee enrolled here" in stale.err
    assert IdentityCard.load(new_card).fingerprint in stale.err

    after = _record(_send(remote, source, new_card, "ito", tmp_path / "out4"))
    fetched = remote("fetch", after, "-o", str(tmp_path / "after.png"), "--as", "lee")
    assert fetched.code == 0, fetched.err

    # the ledger holds the new card hash: a grant naming the new card passes its check
    granted = remote("grant", only_okafor, "--to", str(new_card), "--as", "ito")
    assert granted.code == 0, granted.err
    fetched = remote("fetch", only_okafor, "-o", str(tmp_path / "granted.png"), "--as", "lee")
    assert fetched.code == 0, fetched.err
    refused = remote("grant", only_okafor, "--to", str(old_card), "--as", "ito")
    assert refused.code != 0
    assert "not registered with the card the grant names" in refused.err


def test_the_gateway_rotates_its_own_card_and_restarts(remote, world, gateway, tmp_path):
    """Its own card changed: ``serve`` registers it in place of the old one as it starts
    (before, the start failed: registered with another card), and serves what it held."""
    source = make_png(tmp_path / "scan.png")
    held = _record(_send(remote, source, world.cards["lee"], "ito", tmp_path / "out"))
    old = IdentityCard.load(world.cards["gateway"])
    gateway.stop()
    rotated = remote("keys", "rotate", "gateway")
    assert rotated.code == 0, rotated.err
    assert Keystore(world.home / "keys").card("gateway").address == old.address
    gateway.start()
    fetched = remote("fetch", held, "-o", str(tmp_path / "held.png"), "--as", "lee")
    assert fetched.code == 0, fetched.err
    again = _record(_send(remote, source, world.cards["lee"], "ito", tmp_path / "out2"))
    assert again != held
