"""``service.members.Members`` on the embedded chain: the throttle on scans that unknown
addresses trigger, SIGHUP's full scan, a rotated card replacing the old one for the owner, and a
card rolled back to an older date refused."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from eth_account import Account

from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import IntegrityError
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.service.members import Members


@pytest.fixture
def ledger(tmp_path: Path):
    owner = Account.create()
    with Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=owner) as opened:
        yield opened, owner


def _members(ledger, owner, directory: Path, interval: float) -> Members:
    return Members(ledger, owner, directory, threading.RLock(), interval=interval)


def _drop(directory: Path, card: IdentityCard) -> Path:
    path = directory / f"{card.name}.json"
    path.write_text(card.to_json(), "utf-8")
    return path


def test_an_unknown_address_scans_at_most_once_per_interval(ledger, tmp_path):
    chain, owner = ledger
    directory = tmp_path / "members"
    directory.mkdir()
    members = _members(chain, owner, directory, interval=3600)
    members.bootstrap()
    newcomer = Identity.generate("newcomer")
    _drop(directory, newcomer.card)
    members.seen([newcomer.address])  # within the interval since bootstrap's scan: no scan
    assert chain.identity_of(newcomer.address) is None
    members.rescan_soon()  # SIGHUP
    members.tick()
    assert chain.identity_of(newcomer.address) == newcomer.card.card_hash

    eager = _members(chain, owner, directory, interval=0)
    eager.bootstrap()
    later = Identity.generate("later")
    _drop(directory, later.card)
    eager.seen([later.address])  # the interval has passed: the unknown address scans
    assert chain.identity_of(later.address) == later.card.card_hash


def test_a_rotated_card_replaces_the_old_one_and_a_rollback_is_refused(ledger, tmp_path):
    chain, owner = ledger
    directory = tmp_path / "members"
    directory.mkdir()
    member = Identity.generate("member")
    path = _drop(directory, member.card)
    members = _members(chain, owner, directory, interval=0)
    members.bootstrap()
    rotated = member.rotated()
    _drop(directory, rotated.card)
    assert members.rescan() == 1
    assert chain.identity_of(member.address) == rotated.card.card_hash

    assert rotated.card.created > member.card.created  # a rotation always dates later

    _drop(directory, member.card)  # the old card back: a rollback, refused and logged
    assert members.rescan() == 0
    assert chain.identity_of(member.address) == rotated.card.card_hash
    with pytest.raises(IntegrityError, match="refusing to roll it back"):
        members.enroll(member.card)
    assert path.exists()


def test_a_forged_card_for_a_member_is_not_registered(ledger, tmp_path):
    """Someone who can write the members directory but lacks the member's key: a card with the
    member's address and the attacker's transport keys fails its signature, and the ledger keeps
    the member's card."""
    chain, owner = ledger
    directory = tmp_path / "members"
    directory.mkdir()
    member = Identity.generate("member")
    path = _drop(directory, member.card)
    members = _members(chain, owner, directory, interval=0)
    members.bootstrap()
    attacker = Identity.generate("member")
    forged = json.loads(member.card.to_json())
    forged["keys"] = json.loads(attacker.card.to_json())["keys"]
    path.write_text(json.dumps(forged), "utf-8")
    assert members.rescan() == 0
    assert chain.identity_of(member.address) == member.card.card_hash
    signed_by_attacker = json.loads(attacker.card.to_json())
    signed_by_attacker["address"] = member.address  # the attacker's own signature, not the member's
    path.write_text(json.dumps(signed_by_attacker), "utf-8")
    members.rescan_soon()  # every file read again, whatever its size and time
    members.tick()
    assert chain.identity_of(member.address) == member.card.card_hash
