"""Identity cards and the encrypted keystore: round trips, forgeries, malformed input, tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import unicodedata
from pathlib import Path

import pytest
from eth_account import Account

from scanseal.crypto.identity import Identity, IdentityCard, Keystore, fingerprint
from scanseal.crypto.signing import sign_message, verify_signature
from scanseal.crypto.stanzas import RECIPIENT_KINDS, X25519, TransportKey
from scanseal.errors import IntegrityError, InvalidInput, NotFound, WrongPassphrase

FAST = 2**10  # scrypt cost for tests only; the default stays 2**15
PASSPHRASE = "test passphrase"
VECTOR = Path(__file__).parents[1] / "vectors" / "keystore_v1.json"
KEYS_DOC = Path(__file__).parents[2] / "docs" / "KEYS.md"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    keystore = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=FAST)
    keystore.create("alice", PASSPHRASE)
    keystore.create("bob", PASSPHRASE)
    return keystore


@pytest.fixture(scope="module")
def alice(store):
    return store.load("alice", PASSPHRASE)


@pytest.fixture(scope="module")
def bob(store):
    return store.load("bob", PASSPHRASE)


def card_dict(identity: Identity) -> dict:
    return json.loads(identity.card.to_json())


def resign(obj: dict, account) -> dict:
    """Re-sign a (modified) card dict with ``account``, the way a forger would."""
    unsigned = {k: v for k, v in obj.items() if k != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    return {**obj, "signature": sign_message(account, canonical)}


# --- cards -----------------------------------------------------------------------------------


def test_card_round_trip(alice):
    card = alice.card
    again = IdentityCard.from_json(card.to_json())
    assert again == card
    assert again.card_hash == card.card_hash
    assert hash(again) == hash(card)
    assert set(card.keys) == set(RECIPIENT_KINDS)
    assert card.address == alice.account.address


def test_card_json_is_readable_and_marked(alice):
    text = alice.card.to_json()
    assert text.startswith('{\n  "scanseal_card": 1,\n  "name": "alice"')
    assert (
        json.loads(text)["keys"][X25519]
        == base64.b64encode(alice.card.keys[X25519].public_bytes).decode()
    )


def test_canonical_bytes_are_sorted_compact_and_unsigned(alice):
    canonical = alice.card.canonical_bytes()
    parsed = json.loads(canonical)
    assert "signature" not in parsed
    assert canonical == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    verify_signature(canonical, alice.card.signature, alice.address)


def test_card_hash_covers_the_signature(alice):
    signed = {**json.loads(alice.card.canonical_bytes()), "signature": alice.card.signature}
    expected = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    assert alice.card.card_hash == hashlib.sha256(expected).digest()


def test_recipient_key_addresses_the_private_key(alice):
    for kind in RECIPIENT_KINDS:
        stanza = alice.card.recipient(kind).wrap(b"k" * 32)
        assert alice.transport_keys[kind].unwrap(stanza) == b"k" * 32
    with pytest.raises(InvalidInput):
        alice.card.recipient("rsa-1024")


def test_keys_mapping_is_read_only(alice):
    with pytest.raises(TypeError):
        alice.card.keys[X25519] = alice.card.keys[X25519]  # type: ignore[index]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda c, other: {**c, "keys": {**c["keys"], X25519: other["keys"][X25519]}},
            id="key-swapped",
        ),
        pytest.param(lambda c, other: {**c, "address": other["address"]}, id="address-swapped"),
        pytest.param(lambda c, other: {**c, "name": "mallory"}, id="name-changed"),
        pytest.param(lambda c, other: {**c, "created": "2020-01-01T00:00:00Z"}, id="date-changed"),
        pytest.param(
            lambda c, other: {**c, "signature": other["signature"]}, id="signature-swapped"
        ),
    ],
)
def test_forged_card(alice, bob, forge):
    forged = forge(card_dict(alice), card_dict(bob))
    with pytest.raises(IntegrityError):
        IdentityCard.from_json(json.dumps(forged))


def test_card_signed_by_another_key(alice, bob):
    forged = resign({**card_dict(alice), "keys": card_dict(bob)["keys"]}, bob.account)
    with pytest.raises(IntegrityError, match=f"signature is by {bob.address}"):
        IdentityCard.from_json(json.dumps(forged))


def test_high_s_signature_on_card(alice):
    raw = bytes.fromhex(alice.card.signature[2:])
    s = int.from_bytes(raw[32:64], "big")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = raw[:32] + (n - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    with pytest.raises(IntegrityError):
        IdentityCard.from_json(json.dumps({**card_dict(alice), "signature": "0x" + twin.hex()}))


def test_direct_construction_is_verified(alice, bob):
    card = alice.card
    with pytest.raises(IntegrityError):
        IdentityCard(card.name, bob.address, card.keys, card.created, card.signature)


def _without(obj: dict, field: str) -> dict:
    return {k: v for k, v in obj.items() if k != field}


def _set_key(obj: dict, kind: str, value: object) -> dict:
    return {**obj, "keys": {**obj["keys"], kind: value}}


def _rsa_oid_changed(encoded: str) -> str:
    der = base64.b64decode(encoded)
    rsa_oid = bytes.fromhex("2a864886f70d010101")
    assert rsa_oid in der
    return base64.b64encode(der.replace(rsa_oid, b"\x2b" + rsa_oid[1:], 1)).decode()


MALFORMED = [
    ("missing-name", lambda c: _without(c, "name"), "'name' is missing"),
    ("missing-keys", lambda c: _without(c, "keys"), "'keys' is missing"),
    ("missing-signature", lambda c: _without(c, "signature"), "'signature' is missing"),
    ("missing-marker", lambda c: _without(c, "scanseal_card"), "'scanseal_card' is missing"),
    (
        "missing-kind",
        lambda c: {**c, "keys": _without(c["keys"], X25519)},
        "'keys.x25519' is missing",
    ),
    (
        "bad-base64",
        lambda c: _set_key(c, X25519, "not*base64!"),
        "'keys.x25519' is not valid base64",
    ),
    (
        "unpadded-base64",
        lambda c: _set_key(c, X25519, c["keys"][X25519].rstrip("=")),
        "'keys.x25519'",
    ),
    (
        "short-key",
        lambda c: _set_key(c, X25519, base64.b64encode(b"\x01" * 31).decode()),
        "'keys.x25519' is not a usable key",
    ),
    (
        "long-rsa",
        lambda c: _set_key(c, "rsa-oaep-2048", base64.b64encode(b"\x30" * 300).decode()),
        "'keys.rsa-oaep-2048'",
    ),
    (  # DER naming an algorithm OID nobody implements (1.3.840... for 1.2.840.113549.1.1.1)
        "rsa-unknown-algorithm",
        lambda c: _set_key(c, "rsa-oaep-2048", _rsa_oid_changed(c["keys"]["rsa-oaep-2048"])),
        "'keys.rsa-oaep-2048' is not a usable key",
    ),
    (
        "unknown-kind",
        lambda c: _set_key(c, "rsa-1024", c["keys"][X25519]),
        "'keys.rsa-1024' is not a known",
    ),
    ("key-not-string", lambda c: _set_key(c, X25519, 7), "'keys.x25519' must be a string"),
    ("keys-not-object", lambda c: {**c, "keys": []}, "'keys' must be a JSON object"),
    ("unknown-field", lambda c: {**c, "email": "a@b"}, "'email' is not a known field"),
    ("future-version", lambda c: {**c, "scanseal_card": 2}, "'scanseal_card' is 2"),
    ("bool-version", lambda c: {**c, "scanseal_card": True}, "'scanseal_card' must be an integer"),
    ("lowercase-address", lambda c: {**c, "address": c["address"].lower()}, "'address'"),
    ("bad-created", lambda c: {**c, "created": "yesterday"}, "'created'"),
    ("impossible-date", lambda c: {**c, "created": "2026-02-30T00:00:00Z"}, "'created'"),
    ("bad-name", lambda c: {**c, "name": "Alice Smith"}, "'name'"),
    ("short-signature", lambda c: {**c, "signature": c["signature"][:-2]}, "'signature'"),
    ("name-not-string", lambda c: {**c, "name": None}, "'name' must be a string"),
]


@pytest.mark.parametrize(
    ("mangle", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_card(alice, mangle, message):
    with pytest.raises(InvalidInput) as caught:
        IdentityCard.from_json(json.dumps(mangle(card_dict(alice))))
    assert message in caught.value.reason
    assert caught.value.reason.startswith("identity card")


@pytest.mark.parametrize("text", ["", "not json", "[]", '"card"', "{", '{"name": NaN}', "\ud800"])
def test_card_not_json(text):
    with pytest.raises(InvalidInput, match="identity card"):
        IdentityCard.from_json(text)


def test_card_duplicate_field(alice):
    text = alice.card.to_json().replace('"name": "alice"', '"name": "alice", "name": "alice"')
    with pytest.raises(InvalidInput, match="duplicate"):
        IdentityCard.from_json(text)


def test_card_too_large():
    with pytest.raises(InvalidInput, match="larger"):
        IdentityCard.from_json(" " * 70_000)


def test_card_load(alice, tmp_path):
    path = tmp_path / "alice.card.json"
    path.write_text(alice.card.to_json())
    assert IdentityCard.load(path) == alice.card


def test_card_load_errors_name_the_path(alice, bob, tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(InvalidInput, match=re.escape(str(missing))):
        IdentityCard.load(missing)
    with pytest.raises(InvalidInput, match=re.escape(str(tmp_path))):
        IdentityCard.load(tmp_path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidInput, match=re.escape(str(binary))):
        IdentityCard.load(binary)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**card_dict(alice), "address": bob.address}))
    with pytest.raises(IntegrityError, match=re.escape(str(forged))):
        IdentityCard.load(forged)


# --- identities -------------------------------------------------------------------------------


def test_identity_signs_as_its_address(alice):
    verify_signature(b"payload", alice.sign(b"payload"), alice.card.address)


def test_identity_repr_hides_keys(alice):
    text = repr(alice)
    assert alice.address in text
    assert bytes(alice.account.key).hex() not in text


def test_identity_refuses_keys_that_do_not_match_its_card(alice, bob):
    with pytest.raises(IntegrityError):
        Identity(bob.account, alice.transport_keys, alice.card)
    mixed = {**alice.transport_keys, X25519: bob.transport_keys[X25519]}
    with pytest.raises(IntegrityError, match="x25519"):
        Identity(alice.account, mixed, alice.card)
    with pytest.raises(InvalidInput):
        Identity(alice.account, {X25519: alice.transport_keys[X25519]}, alice.card)


# --- keystore ---------------------------------------------------------------------------------


def test_keystore_round_trip(store, alice):
    again = store.load("alice", PASSPHRASE)
    assert again.card == alice.card
    assert again.account.key == alice.account.key
    for kind in RECIPIENT_KINDS:
        assert (
            again.transport_keys[kind].private_bytes() == alice.transport_keys[kind].private_bytes()
        )
    assert store.card("alice") == alice.card
    assert store.names() == ["alice", "bob"]


def test_keystore_file_is_private_and_alone(store):
    path = store.path("alice")
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in store.root.iterdir()) == ["alice.json", "bob.json"]


def test_keystore_file_stores_no_plain_secret(store, alice):
    text = store.path("alice").read_text()
    assert bytes(alice.account.key).hex() not in text
    secret = base64.b64encode(alice.transport_keys[X25519].private_bytes()).decode()
    assert secret not in text
    assert json.loads(text)["card"] == card_dict(alice)


def test_create_refuses_existing_name(store):
    with pytest.raises(InvalidInput, match="already exists"):
        store.create("alice", "another passphrase")


@pytest.mark.parametrize("name", ["", "Alice", "a b", "../x", ".hidden", "a/b", "x" * 65, "é"])
def test_create_refuses_bad_name(tmp_path, name):
    with pytest.raises(InvalidInput, match="identity name"):
        Keystore(tmp_path, scrypt_n=FAST).create(name, PASSPHRASE)


def test_create_refuses_empty_passphrase(tmp_path):
    with pytest.raises(InvalidInput, match="passphrase"):
        Keystore(tmp_path, scrypt_n=FAST).create("carol", "")


def test_unknown_name(store):
    with pytest.raises(NotFound, match="carol"):
        store.load("carol", PASSPHRASE)
    with pytest.raises(NotFound):
        store.card("carol")


def test_wrong_passphrase(store):
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        store.load("alice", PASSPHRASE + "!")


def test_empty_keystore(tmp_path):
    assert Keystore(tmp_path / "absent").names() == []


def test_default_root_is_under_scanseal_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    assert Keystore().root == tmp_path / "keys"


@pytest.mark.parametrize("n", [2**9, 2**21, 3000, 0])
def test_constructor_refuses_scrypt_cost_out_of_bounds(tmp_path, n):
    with pytest.raises(InvalidInput, match="scrypt"):
        Keystore(tmp_path, scrypt_n=n)


def _copy_store(store: Keystore, tmp_path: Path, edit) -> Keystore:
    """A keystore holding alice's file after ``edit(document)``."""
    document = json.loads(store.path("alice").read_text())
    edit(document)
    copy = Keystore(tmp_path, scrypt_n=FAST)
    tmp_path.mkdir(exist_ok=True)
    copy.path("alice").write_text(json.dumps(document))
    return copy


def _flip_b64(value: str, index: int = 5) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x80
    return base64.b64encode(bytes(raw)).decode()


def test_tampered_ciphertext(store, tmp_path):
    def edit(doc):
        doc["cipher"]["ciphertext"] = _flip_b64(doc["cipher"]["ciphertext"])

    with pytest.raises(IntegrityError, match="modified"):
        _copy_store(store, tmp_path, edit).load("alice", PASSPHRASE)


def test_tampered_nonce(store, tmp_path):
    def edit(doc):
        doc["cipher"]["nonce"] = _flip_b64(doc["cipher"]["nonce"], 0)

    with pytest.raises(IntegrityError):
        _copy_store(store, tmp_path, edit).load("alice", PASSPHRASE)


def test_swapped_public_part_same_name(store, tmp_path):
    """Another file's valid card for another 'alice' under the same passphrase: AAD catches it."""
    other = Keystore(tmp_path / "other", scrypt_n=FAST)
    other.create("alice", PASSPHRASE)
    other_card = json.loads(other.path("alice").read_text())["card"]

    def edit(doc):
        doc["card"] = other_card

    copy = _copy_store(store, tmp_path / "copy", edit)
    assert copy.card("alice").address == other.card("alice").address  # the card itself is valid
    with pytest.raises(IntegrityError, match="modified"):
        copy.load("alice", PASSPHRASE)


def test_swapped_public_part_other_name(store, tmp_path):
    bob_card = json.loads(store.path("bob").read_text())["card"]

    def edit(doc):
        doc["card"] = bob_card

    with pytest.raises(IntegrityError, match="holds identity 'bob'"):
        _copy_store(store, tmp_path, edit).load("alice", PASSPHRASE)


def test_renamed_file(store, tmp_path):
    copy = Keystore(tmp_path, scrypt_n=FAST)
    copy.path("carol").write_text(store.path("alice").read_text())
    with pytest.raises(IntegrityError, match="holds identity 'alice', not 'carol'"):
        copy.load("carol", PASSPHRASE)


def test_forged_card_in_keystore(store, bob, tmp_path):
    def edit(doc):
        doc["card"]["address"] = bob.address

    copy = _copy_store(store, tmp_path, edit)
    with pytest.raises(IntegrityError, match="card"):
        copy.card("alice")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["kdf"].update(n=2**30), "kdf.n"),
        (lambda d: d["kdf"].update(r=10**6), "kdf.r"),
        (lambda d: d["kdf"].update(p=0), "kdf.p"),
        (lambda d: d["kdf"].update(n=2**18, r=8, p=16), "kdf.p"),
        (lambda d: d["kdf"].update(n=2**20, r=8), "MiB"),
        (lambda d: d["kdf"].update(n=1000), "power of two"),
        (lambda d: d["kdf"].update(name="argon2id"), "kdf.name"),
        (lambda d: d["kdf"].update(salt="AAAA"), "kdf.salt"),
        (lambda d: d["cipher"].update(nonce="AAAA"), "cipher.nonce"),
        (lambda d: d["cipher"].pop("ciphertext"), "cipher.ciphertext' is missing"),
        (lambda d: d.update(scanseal_keystore=2), "scanseal_keystore"),
        (lambda d: d.update(extra=1), "'extra' is not a known field"),
        (lambda d: d.update(card=[]), "'card' must be a JSON object"),
    ],
)
def test_hostile_or_corrupt_keystore(store, tmp_path, edit, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        _copy_store(store, tmp_path, edit).load("alice", PASSPHRASE)


def test_keystore_not_json(tmp_path):
    copy = Keystore(tmp_path, scrypt_n=FAST)
    copy.path("alice").write_text("{ truncated")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        copy.load("alice", PASSPHRASE)


def test_changed_kdf_cost_reads_as_wrong_passphrase(store, tmp_path):
    """Documented: the check value depends on the KDF parameters, so their change looks so."""

    def edit(doc):
        doc["kdf"]["n"] = FAST * 2

    with pytest.raises(WrongPassphrase):
        _copy_store(store, tmp_path, edit).load("alice", PASSPHRASE)


# --- the published test vector (docs/KEYS.md) -------------------------------------------------


@pytest.fixture(scope="module")
def vector():
    return json.loads(VECTOR.read_text())


@pytest.fixture(scope="module")
def vector_store(vector, tmp_path_factory):
    root = tmp_path_factory.mktemp("vector")
    (root / f"{vector['name']}.json").write_text(json.dumps(vector["keystore"]))
    return Keystore(root)


def test_vector_unlocks(vector, vector_store):
    expected = vector["expected"]
    identity = vector_store.load(vector["name"], vector["passphrase"])
    assert identity.address == expected["address"]
    assert "0x" + bytes(identity.account.key).hex() == expected["ethereum_private_key"]
    assert {k: v.key_id.hex() for k, v in identity.card.keys.items()} == expected["key_ids"]
    assert identity.card.card_hash.hex() == expected["card_hash"]
    assert identity.sign(bytes.fromhex(expected["message_hex"])) == expected["signature"]
    for kind, key in identity.transport_keys.items():
        assert (
            TransportKey.from_private_bytes(kind, key.private_bytes()).recipient()
            == (identity.card.keys[kind])
        )


def test_vector_passphrase_is_nfc_normalized(vector, vector_store):
    decomposed = unicodedata.normalize("NFD", vector["passphrase"])
    assert decomposed != vector["passphrase"]
    assert vector_store.load(vector["name"], decomposed).address == vector["expected"]["address"]


def test_vector_wrong_passphrase(vector, vector_store):
    with pytest.raises(WrongPassphrase):
        vector_store.load(vector["name"], vector["passphrase"].upper())


def test_vector_is_the_one_in_the_docs(vector):
    blocks = re.findall(r"```json\n(.*?)```", KEYS_DOC.read_text(), flags=re.DOTALL)
    assert vector["keystore"] in [json.loads(block) for block in blocks]
    assert vector["passphrase"] in KEYS_DOC.read_text()


def test_write_leaves_no_temp_file_on_refusal(store):
    before = sorted(os.listdir(store.root))
    with pytest.raises(InvalidInput):
        store.create("alice", PASSPHRASE)
    assert sorted(os.listdir(store.root)) == before


def test_fresh_salt_and_nonce_per_file(tmp_path):
    store = Keystore(tmp_path, scrypt_n=FAST)
    store.create("one", PASSPHRASE)
    store.create("two", PASSPHRASE)
    one, two = (json.loads(store.path(n).read_text()) for n in ("one", "two"))
    assert one["kdf"]["salt"] != two["kdf"]["salt"]
    assert one["cipher"]["nonce"] != two["cipher"]["nonce"]
    assert one["kdf"]["n"] == FAST


def test_default_cost_is_not_weakened(tmp_path):
    assert Keystore(tmp_path)._scrypt_n == 2**15


def test_account_round_trip_via_eth_account(alice):
    assert Account.from_key(alice.account.key).address == alice.address


def test_write_never_replaces_a_file(tmp_path):
    from scanseal.crypto import _keyfile

    target = tmp_path / "keys" / "alice.json"
    _keyfile.write_new(target, "first")
    with pytest.raises(InvalidInput, match="already exists"):
        _keyfile.write_new(target, "second")
    assert target.read_text() == "first"
    assert os.listdir(target.parent) == ["alice.json"]
    assert target.parent.stat().st_mode & 0o777 == 0o700


def test_private_key_of_an_unknown_algorithm_is_malformed(alice):
    """DER that names an algorithm OID nobody implements is InvalidInput, not a library error."""
    der = alice.transport_keys["rsa-oaep-2048"].private_bytes()
    rsa_oid = bytes.fromhex("2a864886f70d010101")
    assert rsa_oid in der
    unknown = der.replace(rsa_oid, b"\x2b" + rsa_oid[1:])
    with pytest.raises(InvalidInput, match="malformed rsa-oaep-2048 private key"):
        TransportKey.from_private_bytes("rsa-oaep-2048", unknown)


def test_vector_fingerprint(vector, vector_store):
    """docs/KEYS.md §2's fingerprint vector: the first 16 bytes of the card hash, grouped."""
    card = vector_store.card(vector["name"])
    assert card.fingerprint == "b8b6 bbb5 2e3d 7544 415a 24dc a1c4 9cdd"
    assert card.fingerprint.replace(" ", "") == vector["expected"]["card_hash"][:32]
    assert f"fingerprint: `{card.fingerprint}`" in KEYS_DOC.read_text()


def test_fingerprint_refuses_a_short_hash():
    with pytest.raises(InvalidInput, match="16 bytes"):
        fingerprint(bytes(15))
