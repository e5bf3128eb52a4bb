"""``scanseal keys rotate NAME``: new transport keys and a new card for the same account, the old
keys kept so that what was sealed to the old card still opens."""

from __future__ import annotations

import json

import pytest

from cli_support import FAST, PASSPHRASE, card_files, one_error_line
from corpus import make_png
from scanseal.crypto import envelope
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.errors import NotARecipient


@pytest.fixture
def cards(home):
    return card_files(home, "gateway", "lee")


def _seal(run, card, source, out):
    result = run("seal", str(source), "--to", str(card), "-o", str(out), "--as", "gateway")
    assert result.code == 0, result.err


def test_rotate_keeps_the_account_and_opens_old_envelopes(home, cards, run, tmp_path):
    source = make_png(tmp_path / "scan.png")
    _seal(run, cards["lee"], source, tmp_path / "old.sseal")
    old = IdentityCard.load(cards["lee"])

    result = run("keys", "rotate", "lee", "-o", str(tmp_path / "lee.new.json"))
    assert result.code == 0, result.err
    new = IdentityCard.load(tmp_path / "lee.new.json")
    assert new == Keystore(home / "keys").card("lee")
    assert new.address == old.address  # the same member on the ledger
    assert new.card_hash != old.card_hash
    for kind in old.keys:
        assert new.keys[kind].key_id != old.keys[kind].key_id
    assert new.fingerprint in result.out
    assert old.fingerprint in result.out  # what it replaces
    assert "members directory" in result.err

    opened = run("open", str(tmp_path / "old.sseal"), "-o", str(tmp_path / "o1.png"), "--as", "lee")
    assert opened.code == 0, opened.err
    assert (tmp_path / "o1.png").read_bytes() == source.read_bytes()
    _seal(run, tmp_path / "lee.new.json", source, tmp_path / "new.sseal")
    opened = run("open", str(tmp_path / "new.sseal"), "-o", str(tmp_path / "o2.png"), "--as", "lee")
    assert opened.code == 0, opened.err


def test_rotating_twice_keeps_every_earlier_key(home, cards, run, tmp_path):
    source = make_png(tmp_path / "scan.png")
    _seal(run, cards["lee"], source, tmp_path / "first.sseal")
    assert run("keys", "rotate", "lee").code == 0
    second = home / "second.json"
    assert run("keys", "card", "lee", "-o", str(second)).code == 0
    _seal(run, second, source, tmp_path / "second.sseal")
    assert run("keys", "rotate", "lee").code == 0
    identity = Keystore(home / "keys").load("lee", PASSPHRASE)
    assert [entry.card_hash for entry in identity.retired] == [
        IdentityCard.load(second).card_hash,
        IdentityCard.load(cards["lee"]).card_hash,
    ]
    for name in ("first", "second"):
        out = tmp_path / f"{name}.png"
        opened = run("open", str(tmp_path / f"{name}.sseal"), "-o", str(out), "--as", "lee")
        assert opened.code == 0, opened.err


def test_old_envelopes_open_with_the_retired_keys_only(home, cards):
    """What opens an envelope sealed to the old card is the retired keys, not the new ones."""
    lee = Keystore(home / "keys", scrypt_n=FAST).load("lee", PASSPHRASE)
    rotated = lee.rotated()
    file_key = envelope.new_file_key()
    header = envelope.build_header(file_key, [lee.card.recipient("x25519").wrap(file_key)])
    assert envelope.unlock(header, rotated.unwrap_keys) == file_key
    with pytest.raises(NotARecipient):
        envelope.unlock(header, rotated.transport_keys.values())
    assert rotated.retired[0].card_hash == lee.card.card_hash
    assert rotated.card.address == lee.address


def test_rotate_wrong_passphrase_leaves_the_file(home, cards, run, monkeypatch):
    before = (home / "keys" / "lee.json").read_bytes()
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", "not it")
    result = run("keys", "rotate", "lee")
    assert result.code == 4
    one_error_line(result)
    assert (home / "keys" / "lee.json").read_bytes() == before


def test_rotate_unknown_identity(home, run):
    result = run("keys", "rotate", "nobody")
    assert result.code == 6
    one_error_line(result)


def test_rotated_keystore_reads_as_json_with_retired_keys(home, cards, run):
    assert run("keys", "rotate", "lee").code == 0
    document = json.loads((home / "keys" / "lee.json").read_text())
    assert document["card"] == json.loads(Keystore(home / "keys").card("lee").to_json())
    assert (home / "keys" / "lee.json").stat().st_mode & 0o777 == 0o600
