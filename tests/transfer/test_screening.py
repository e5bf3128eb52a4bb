"""Sealing screens first: the verdict is signed into the manifest, or the seal is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import make_png
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.transfer.local import manifest_path_for, seal_file, verify_sealed
from scanseal.transfer.manifest import Manifest
from tests_detect_support import flagged_plane, save_png16


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("gateway", "lee")}


def _seal(people: dict[str, Identity], source: Path, out: Path, policy: str):
    return seal_file(source, [people["lee"].card], people["gateway"], out, screen=policy)  # type: ignore[arg-type]


def test_default_flag_policy_signs_the_verdict(tmp_path, people):
    sealed = seal_file(
        make_png(tmp_path / "scan.png", 96, 96), [people["lee"].card], people["gateway"],
        tmp_path / "scan.sseal",
    )  # fmt: skip
    screen = sealed.manifest.screen
    assert screen is not None
    assert screen["policy"] == "flag"
    assert set(screen) == {"score", "threshold", "tampered", "model_version", "policy"}
    reloaded = Manifest.load(sealed.manifest_path)
    assert reloaded.screen == screen
    verify_sealed(sealed.envelope, people["lee"])


def test_flagged_image_is_sealed_under_flag_and_refused_under_block(tmp_path, people):
    source = save_png16(flagged_plane(), tmp_path / "edited.png")
    flagged = _seal(people, source, tmp_path / "a.sseal", "flag")
    assert flagged.manifest.screen is not None
    assert flagged.manifest.screen["tampered"] is True
    with pytest.raises(IntegrityError, match="refused by screening"):
        _seal(people, source, tmp_path / "b.sseal", "block")
    assert not (tmp_path / "b.sseal").exists()
    assert not manifest_path_for(tmp_path / "b.sseal").exists()


def test_off_records_nothing_and_unknown_policy_is_refused(tmp_path, people):
    source = make_png(tmp_path / "scan.png")
    assert _seal(people, source, tmp_path / "c.sseal", "off").manifest.screen is None
    with pytest.raises(InvalidInput, match="screen policy"):
        _seal(people, source, tmp_path / "d.sseal", "loud")


def test_rewriting_the_verdict_breaks_the_signature(tmp_path, people):
    sealed = _seal(people, make_png(tmp_path / "s.png", 80, 80), tmp_path / "e.sseal", "flag")
    text = sealed.manifest_path.read_text()
    flipped = text.replace('"tampered": false', '"tampered": true')
    if flipped == text:
        flipped = text.replace('"tampered": true', '"tampered": false')
    sealed.manifest_path.write_text(flipped)
    with pytest.raises(IntegrityError):
        verify_sealed(sealed.envelope)
