"""Attacks on the sealed envelope: every change to the bytes must fail authentication.

Keys are generated once per module (RSA-2048 generation is slow) and reused by hypothesis.
"""

from __future__ import annotations

import io
import os
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanseal.crypto import envelope
from scanseal.crypto.stanzas import RECIPIENT_KINDS, Stanza, TransportKey
from scanseal.errors import IntegrityError, InvalidInput, NotARecipient

SEGMENT = 32


@cache
def key(kind: str, n: int = 0) -> TransportKey:
    del n  # distinguishes cached keys of one kind
    return TransportKey.generate(kind)


def seal(data: bytes, recipients: list[TransportKey], segment: int = SEGMENT) -> bytes:
    out = io.BytesIO()
    envelope.seal(io.BytesIO(data), out, [k.recipient() for k in recipients], segment_size=segment)
    return out.getvalue()


def open_bytes(sealed: bytes, identity: TransportKey) -> bytes:
    out = io.BytesIO()
    envelope.open_envelope(io.BytesIO(sealed), out, [identity])
    return out.getvalue()


def split(sealed: bytes) -> tuple[bytes, list[bytes]]:
    """Header bytes and ciphertext segments of an envelope."""
    header = envelope.read_header(io.BytesIO(sealed))
    payload = sealed[len(header.encoded) :]
    step = header.segment_size + envelope.TAG_SIZE
    return header.encoded, [payload[i : i + step] for i in range(0, len(payload), step)]


@pytest.mark.parametrize("kind", RECIPIENT_KINDS)
@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 5 * SEGMENT, 1000])
def test_round_trip_each_kind(kind: str, size: int) -> None:
    data = os.urandom(size)
    assert open_bytes(seal(data, [key(kind)]), key(kind)) == data


def test_every_recipient_of_a_multi_recipient_envelope_opens_it() -> None:
    recipients = [key(kind) for kind in RECIPIENT_KINDS] + [key("x25519", 1)]
    data = os.urandom(3 * SEGMENT + 5)
    sealed = seal(data, recipients)
    assert all(open_bytes(sealed, k) == data for k in recipients)


def test_two_seals_of_the_same_input_share_no_bytes_beyond_magic() -> None:
    data = bytes(200)
    a, b = seal(data, [key("x25519")]), seal(data, [key("x25519")])
    assert a[:9] == b[:9]
    assert a[len(a) - 100 :] != b[len(b) - 100 :]


def test_wrong_key_is_not_a_recipient() -> None:
    sealed = seal(b"pixels", [key("x25519")])
    with pytest.raises(NotARecipient, match="not a recipient"):
        open_bytes(sealed, key("x25519", 1))


def test_header_without_recipients_cannot_be_built() -> None:
    with pytest.raises(InvalidInput):
        envelope.seal(io.BytesIO(b"x"), io.BytesIO(), [])


@pytest.mark.parametrize("segment", [0, 15, envelope.MAX_SEGMENT_SIZE + 1])
def test_segment_size_is_bounded(segment: int) -> None:
    with pytest.raises(InvalidInput, match="segment size"):
        envelope.seal(
            io.BytesIO(b"x"), io.BytesIO(), [key("x25519").recipient()], segment_size=segment
        )


# --- structural attacks, each against every recipient kind -------------------------------


def _attacks(sealed: bytes, other: bytes) -> dict[str, bytes]:
    header, segs = split(sealed)
    other_header, other_segs = split(other)
    return {
        "reorder": header + segs[1] + segs[0] + b"".join(segs[2:]),
        "drop first": header + b"".join(segs[1:]),
        "drop middle": header + segs[0] + b"".join(segs[2:]),
        "drop last": header + b"".join(segs[:-1]),
        "duplicate": header + segs[0] + b"".join(segs),
        "duplicate last": sealed + segs[-1],
        "truncate one byte": sealed[:-1],
        "truncate to header": header,
        "truncate in header": header[:-5],
        "extend": sealed + b"\x00",
        "extend a segment": sealed + os.urandom(envelope.TAG_SIZE + 3),
        "splice other payload": header + b"".join(other_segs),
        "splice one segment": header + segs[0] + other_segs[1] + b"".join(segs[2:]),
        "other header": other_header + b"".join(segs),
    }


_ATTACKS = [
    "reorder",
    "drop first",
    "drop middle",
    "drop last",
    "duplicate",
    "duplicate last",
    "truncate one byte",
    "truncate to header",
    "truncate in header",
    "extend",
    "extend a segment",
    "splice other payload",
    "splice one segment",
    "other header",
]


@pytest.mark.parametrize("kind", RECIPIENT_KINDS)
@pytest.mark.parametrize("attack", _ATTACKS)
def test_structural_attacks_fail_closed(kind: str, attack: str) -> None:
    data = os.urandom(4 * SEGMENT + 7)
    identity = key(kind)
    sealed, other = seal(data, [identity]), seal(data, [identity])
    forged = _attacks(sealed, other)
    assert sorted(forged) == sorted(_ATTACKS)
    with pytest.raises(IntegrityError):
        open_bytes(forged[attack], identity)


def test_stanza_swapped_from_another_envelope_fails() -> None:
    identity, friend = key("x25519"), key("mlkem768-x25519")
    sealed = seal(os.urandom(90), [identity, friend])
    other = seal(os.urandom(90), [identity, friend])
    header = envelope.read_header(io.BytesIO(sealed))
    other_header = envelope.read_header(io.BytesIO(other))
    swapped = (other_header.stanzas[0], header.stanzas[1])
    forged_header = envelope.Header(
        header.segment_size, header.salt, header.nonce_prefix, swapped, header.mac, b""
    )
    rebuilt = _encode_unauthenticated(forged_header) + header.mac + sealed[len(header.encoded) :]
    for k in (identity, friend):
        with pytest.raises(IntegrityError):
            open_bytes(rebuilt, k)


def test_a_recipient_cannot_add_a_stanza_unseen() -> None:
    """Another recipient of the same file knows the file key but not our header MAC input."""
    identity, stranger = key("x25519"), key("x25519", 1)
    sealed = seal(os.urandom(70), [identity])
    header = envelope.read_header(io.BytesIO(sealed))
    extra = stranger.recipient().wrap(os.urandom(32))
    forged_header = envelope.Header(
        header.segment_size,
        header.salt,
        header.nonce_prefix,
        (*header.stanzas, extra),
        header.mac,
        b"",
    )
    rebuilt = _encode_unauthenticated(forged_header) + header.mac + sealed[len(header.encoded) :]
    with pytest.raises(IntegrityError, match="header"):
        open_bytes(rebuilt, identity)


def _encode_unauthenticated(header: envelope.Header) -> bytes:
    """Re-encode a header's fields as an attacker would: without the MAC key."""
    real = envelope.build_header(
        bytes(32),
        header.stanzas,
        segment_size=header.segment_size,
        salt=header.salt,
        nonce_prefix=header.nonce_prefix,
    )
    return real.authenticated_bytes


def test_rewrap_keeps_the_payload_and_changes_the_recipients() -> None:
    owner, newcomer = key("x25519"), key("rsa-oaep-2048")
    data = os.urandom(150)
    out = io.BytesIO()
    header, file_key = envelope.seal(io.BytesIO(data), out, [owner.recipient()], segment_size=32)
    payload = out.getvalue()[len(header.encoded) :]
    stanzas = [*header.stanzas, newcomer.recipient().wrap(file_key)]
    regranted = envelope.rewrap(header, file_key, stanzas).encoded + payload
    assert open_bytes(regranted, newcomer) == data
    assert open_bytes(regranted, owner) == data
    revoked = envelope.rewrap(header, file_key, stanzas[1:]).encoded + payload
    with pytest.raises(NotARecipient):
        open_bytes(revoked, owner)


# --- property tests ---------------------------------------------------------------------

_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(
    data=st.binary(min_size=0, max_size=300),
    kind=st.sampled_from(RECIPIENT_KINDS),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_bit_flip_is_detected(data: bytes, kind: str, position: int, bit: int) -> None:
    identity = key(kind)
    sealed = bytearray(seal(data, [identity]))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(IntegrityError):
        open_bytes(bytes(sealed), identity)


@_fast
@given(
    data=st.binary(min_size=1, max_size=300),
    cut=st.integers(min_value=1),
    tail=st.binary(min_size=1, max_size=80),
)
def test_any_truncation_or_extension_is_detected(data: bytes, cut: int, tail: bytes) -> None:
    identity = key("x25519")
    sealed = seal(data, [identity])
    with pytest.raises(IntegrityError):
        open_bytes(sealed[: len(sealed) - 1 - cut % (len(sealed) - 1)], identity)
    with pytest.raises(IntegrityError):
        open_bytes(sealed + tail, identity)


@_fast
@given(
    data=st.binary(min_size=2 * SEGMENT + 1, max_size=8 * SEGMENT),
    order=st.permutations(range(8)),
)
def test_any_segment_permutation_is_detected(data: bytes, order: list[int]) -> None:
    identity = key("x25519")
    sealed = seal(data, [identity])
    header, segs = split(sealed)
    permuted = [segs[i] for i in order if i < len(segs)]
    if permuted == segs:
        permuted = permuted[::-1]
    with pytest.raises(IntegrityError):
        open_bytes(header + b"".join(permuted), identity)


@_fast
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_header_byte_edit_is_detected(position: int, value: int) -> None:
    identity = key("mlkem768-x25519")
    sealed = seal(b"header edits", [identity, key("x25519")])
    header_len = len(envelope.read_header(io.BytesIO(sealed)).encoded)
    forged = bytearray(sealed)
    index = position % header_len
    if forged[index] == value:
        value ^= 0xFF
    forged[index] = value
    with pytest.raises(IntegrityError):
        open_bytes(bytes(forged), identity)


def test_forged_stanza_for_my_key_id_is_an_integrity_error() -> None:
    identity = key("x25519")
    sealed = seal(b"x" * 40, [identity])
    header = envelope.read_header(io.BytesIO(sealed))
    stanza = header.stanzas[0]
    garbage = Stanza(stanza.kind, stanza.key_id, os.urandom(len(stanza.body)))
    forged = envelope.Header(
        header.segment_size, header.salt, header.nonce_prefix, (garbage,), header.mac, b""
    )
    rebuilt = _encode_unauthenticated(forged) + header.mac + sealed[len(header.encoded) :]
    with pytest.raises(IntegrityError, match="does not decrypt"):
        open_bytes(rebuilt, identity)


# --- property tests: drop, duplicate, stanza swap, cross-file splice ----------------------

_modest = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_segmented = st.binary(min_size=1, max_size=6 * SEGMENT)  # 1 to 6 segments


def refused(forged: bytes, identity: TransportKey, plaintext: bytes) -> None:
    """Opening fails with IntegrityError and releases no byte it could not authenticate.

    A streaming reader writes each segment once its tag holds, so what reached the output
    before the failure must be whole genuine segments from the start, never the complete
    plaintext and never a forged byte; file-level opening discards even that (test_local.py).
    """
    out = io.BytesIO()
    with pytest.raises(IntegrityError):
        envelope.open_envelope(io.BytesIO(forged), out, [identity])
    written = out.getvalue()
    assert len(written) % SEGMENT == 0
    assert len(written) < len(plaintext)
    assert plaintext.startswith(written)


@_modest
@given(plaintext=_segmented, choice=st.data())
def test_dropping_any_segments_is_detected(plaintext: bytes, choice: st.DataObject) -> None:
    identity = key("x25519")
    header, segs = split(seal(plaintext, [identity]))
    dropped = choice.draw(st.sets(st.integers(0, len(segs) - 1), min_size=1), label="dropped")
    kept = [s for i, s in enumerate(segs) if i not in dropped]
    refused(header + b"".join(kept), identity, plaintext)


@_modest
@given(plaintext=_segmented, choice=st.data())
def test_duplicating_any_segment_anywhere_is_detected(
    plaintext: bytes, choice: st.DataObject
) -> None:
    identity = key("x25519")
    header, segs = split(seal(plaintext, [identity]))
    copied = choice.draw(st.integers(0, len(segs) - 1), label="copied segment")
    at = choice.draw(st.integers(0, len(segs)), label="inserted at")
    forged = [*segs[:at], segs[copied], *segs[at:]]
    refused(header + b"".join(forged), identity, plaintext)


_THREE = ("x25519", "mlkem768-x25519", "rsa-oaep-2048")


@_modest
@given(
    swapped=st.sets(st.integers(0, len(_THREE) - 1), min_size=1),
    keep_own_mac=st.booleans(),
    opener=st.sampled_from(_THREE),
)
def test_swapping_stanzas_between_envelopes_is_detected(
    swapped: set[int], keep_own_mac: bool, opener: str
) -> None:
    """Stanzas from an envelope of another file key, for the same recipients, in any subset."""
    recipients = [key(kind) for kind in _THREE]
    plaintext = os.urandom(3 * SEGMENT)
    sealed, other = seal(plaintext, recipients), seal(plaintext, recipients)
    mine, theirs = (envelope.read_header(io.BytesIO(e)) for e in (sealed, other))
    assert mine.stanzas[0].body != theirs.stanzas[0].body  # different file keys
    stanzas = tuple(theirs.stanzas[i] if i in swapped else s for i, s in enumerate(mine.stanzas))
    mac = mine.mac if keep_own_mac else theirs.mac
    forged = envelope.Header(mine.segment_size, mine.salt, mine.nonce_prefix, stanzas, mac, b"")
    rebuilt = _encode_unauthenticated(forged) + mac + sealed[len(mine.encoded) :]
    refused(rebuilt, key(opener), plaintext)


@_modest
@given(plaintext=_segmented, same_plaintext=st.booleans(), choice=st.data())
def test_splicing_a_segment_from_another_envelope_is_detected(
    plaintext: bytes, same_plaintext: bool, choice: st.DataObject
) -> None:
    """Segment i of another envelope for the same recipient replaces segment j of this one."""
    identity = key("x25519")
    other_plain = plaintext if same_plaintext else os.urandom(len(plaintext))
    header, segs = split(seal(plaintext, [identity]))
    _, other_segs = split(seal(other_plain, [identity]))
    i = choice.draw(st.integers(0, len(other_segs) - 1), label="their segment")
    j = choice.draw(st.integers(0, len(segs) - 1), label="our position")
    forged = [*segs[:j], other_segs[i], *segs[j + 1 :]]
    refused(header + b"".join(forged), identity, plaintext)
