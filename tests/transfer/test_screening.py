"""Sealing screens first: the verdict is signed into the manifest, or the seal is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corpus import make_png
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.transfer import flag_warning, screen_verdict
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


# --- the verdict read back (transfer.screen_verdict, flag_warning) ---------------------------


def test_a_flagged_seal_reads_back_flagged_with_one_warning_line(tmp_path, people):
    sealed = _seal(people, save_png16(flagged_plane(), tmp_path / "f.png"), tmp_path / "f.sseal",
                   "flag")  # fmt: skip
    manifest = Manifest.load(sealed.manifest_path)
    verdict = screen_verdict(manifest)
    assert verdict is not None
    assert verdict.flagged
    assert verdict.score is not None
    assert verdict.threshold is not None
    assert verdict.score >= verdict.threshold
    assert verdict.to_dict() == {
        "flagged": True, "score": manifest.screen["score"],  # type: ignore[index]
        "threshold": manifest.screen["threshold"],  # type: ignore[index]
        "model_version": manifest.screen["model_version"], "policy": "flag",  # type: ignore[index]
    }  # fmt: skip
    line = flag_warning(manifest, "f.sseal")
    assert line == (
        f"f.sseal: flagged by the tamper screen at sealing (score {verdict.score:.3f} >= "
        f"threshold {verdict.threshold:.3f}, detector {verdict.model_version})"
    )
    assert "\n" not in line


def test_a_clean_seal_reads_back_not_flagged_and_off_reads_back_none(tmp_path, people):
    clean = _seal(people, make_png(tmp_path / "c.png", 96, 96), tmp_path / "c.sseal", "flag")
    verdict = screen_verdict(clean.manifest)
    assert verdict is not None
    assert not verdict.flagged
    assert verdict.describe().startswith("not flagged by the tamper screen at sealing (score ")
    assert flag_warning(clean.manifest, "c.sseal") is None
    off = _seal(people, make_png(tmp_path / "o.png"), tmp_path / "o.sseal", "off")
    assert screen_verdict(off.manifest) is None
    assert flag_warning(off.manifest, "o.sseal") is None


def _signed_with(people: dict[str, Identity], manifest: Manifest, screen: dict | None) -> Manifest:
    return replace(manifest, screen=screen).signed_by(people["gateway"].sign)


def test_the_verdict_is_read_only_from_what_the_uploader_signed(tmp_path, people):
    off = _seal(people, make_png(tmp_path / "u.png"), tmp_path / "u.sseal", "off").manifest
    entry = {"score": 0.9, "threshold": 0.5, "tampered": True, "model_version": "m"}
    entry["policy"] = "flag"
    unsigned = replace(off, screen=entry)  # a flag added after signing: no verdict at all
    with pytest.raises(IntegrityError):
        screen_verdict(unsigned)
    with pytest.raises(IntegrityError):
        flag_warning(unsigned, "u")
    signed = _signed_with(people, off, entry)
    assert flag_warning(signed, "u") == (
        "u: flagged by the tamper screen at sealing (score 0.900 >= threshold 0.500, detector m)"
    )


def test_an_unreadable_signed_verdict_counts_as_flagged(tmp_path, people):
    off = _seal(people, make_png(tmp_path / "w.png"), tmp_path / "w.sseal", "off").manifest
    odd = _signed_with(people, off, {"tampered": "yes", "score": "high"})
    verdict = screen_verdict(odd)
    assert verdict is not None
    assert verdict.flagged
    assert not verdict.readable
    assert (verdict.score, verdict.threshold, verdict.model_version) == (None, None, "unknown")
    assert flag_warning(odd, "w") == (
        "w: the tamper screen's signed verdict is unreadable (treated as flagged)"
    )
