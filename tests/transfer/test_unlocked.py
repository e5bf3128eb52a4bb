"""Opening a record with what describing it unlocked (``transfer.checked.unlock_record``): the
signature checked and the key unwrapped once, and nothing else skipped. What was unlocked for
one record never opens another, nor the same manifest over another envelope's bytes."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from scanseal.crypto import envelope
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.transfer import LedgerHashes, Manifest, SealedFile, open_checked, seal_file
from scanseal.transfer.checked import Unlocked, unlock_record

SOURCE = Path(str(get_testdata_file("CT_small.dcm")))


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("ito", "lee")}


def sealed(tmp_path: Path, people: dict[str, Identity], name: str) -> SealedFile:
    return seal_file(SOURCE, [people["lee"].card], people["ito"], tmp_path / f"{name}.sseal")


def unlocked_for(people: dict[str, Identity], seal: SealedFile) -> Unlocked:
    header = envelope.read_header(io.BytesIO(seal.envelope.read_bytes()))
    return unlock_record(seal.manifest, header, people["lee"].transport_keys.values(), None)


def hashes(manifest: Manifest) -> LedgerHashes:
    return LedgerHashes(manifest.chain.h1, manifest.chain.h3, manifest.pixel_digest)


def open_with(people, seal: SealedFile, unlocked: Unlocked, output: Path, payload=None):
    return open_checked(
        payload if payload is not None else seal.envelope.read_bytes(), seal.manifest,
        people["lee"], output, hashes(seal.manifest), unlocked=unlocked,
    )  # fmt: skip


def test_opened_with_what_was_unlocked_is_byte_for_byte(tmp_path, people) -> None:
    seal = sealed(tmp_path, people, "a")
    opened = open_with(people, seal, unlocked_for(people, seal), tmp_path / "out.dcm")
    assert opened.path.read_bytes() == SOURCE.read_bytes()


def test_what_was_unlocked_for_another_record_opens_nothing(tmp_path, people) -> None:
    a, b = sealed(tmp_path, people, "a"), sealed(tmp_path, people, "b")
    with pytest.raises(InvalidInput):
        open_with(people, a, unlocked_for(people, b), tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_a_key_unwrapped_from_another_header_is_refused(tmp_path, people) -> None:
    """The same manifest, but the key of another envelope of the same image (a swapped
    header): refused before a byte is decrypted, nothing written."""
    a, b = sealed(tmp_path, people, "a"), sealed(tmp_path, people, "b")
    swapped = dataclasses.replace(unlocked_for(people, a), **{
        f.name: getattr(unlocked_for(people, b), f.name) for f in dataclasses.fields(Unlocked)
        if f.name in ("header", "unwrapping", "file_key")
    })  # fmt: skip
    with pytest.raises(IntegrityError, match="header is not the one"):
        open_with(people, a, swapped, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_other_envelope_bytes_under_the_unlocked_manifest_are_refused(tmp_path, people) -> None:
    """What was unlocked for record a, over envelope b's bytes: refused, nothing written."""
    a, b = sealed(tmp_path, people, "a"), sealed(tmp_path, people, "b")
    with pytest.raises(IntegrityError):
        open_with(people, a, unlocked_for(people, a), tmp_path / "out.dcm",
                  payload=b.envelope.read_bytes())  # fmt: skip
    assert not (tmp_path / "out.dcm").exists()


def test_unlocking_checks_the_signature(tmp_path, people) -> None:
    seal = sealed(tmp_path, people, "a")
    forged = dataclasses.replace(seal.manifest, signature="0x" + "11" * 65)
    header = envelope.read_header(io.BytesIO(seal.envelope.read_bytes()))
    with pytest.raises(IntegrityError):
        unlock_record(forged, header, people["lee"].transport_keys.values(), None)
