"""Objects without pixels are sealed like images, with "not screened: no pixels" signed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scanseal.crypto.identity import Identity, Keystore
from scanseal.integrity.pixels import pixel_digest
from scanseal.transfer import flag_warning, screen_verdict
from scanseal.transfer.local import open_sealed, seal_file, verify_sealed
from study_objects import mixed_study, write


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("gateway", "lee")}


@pytest.mark.parametrize("policy", ["flag", "block"])
def test_each_object_is_sealed_not_screened_and_opens_verified(tmp_path, people, policy):
    for source in write(mixed_study(1)[1:], tmp_path / "in"):  # every object but the CT
        out = tmp_path / "out" / (source.stem + ".sseal")
        sealed = seal_file(source, [people["lee"].card], people["gateway"], out, screen=policy)
        assert sealed.manifest.screen == {"not_screened": "no pixels", "policy": policy}
        assert sealed.manifest.pixel_digest == pixel_digest(source)
        verdict = screen_verdict(sealed.manifest)
        assert verdict is not None
        assert not verdict.flagged
        assert verdict.describe() == "not screened: no pixels"
        assert verdict.to_dict()["not_screened"] == "no pixels"
        assert flag_warning(sealed.manifest, source.name) is None
        report = verify_sealed(out, people["lee"])  # decrypts and re-derives the content digest
        assert "pixel digest matches" in report.checks
        opened = open_sealed(out, people["lee"], tmp_path / "opened" / source.name)
        assert opened.path.read_bytes() == source.read_bytes()
        assert opened.metadata.frames == 0


def test_off_still_records_nothing(tmp_path, people):
    (source,) = write(mixed_study(1)[1:2], tmp_path)
    out = tmp_path / "x.sseal"
    sealed = seal_file(source, [people["lee"].card], people["gateway"], out, screen="off")
    assert sealed.manifest.screen is None


def test_only_the_no_pixels_entry_reads_as_not_flagged(tmp_path, people):
    """A ``not_screened`` of another reason, or beside a ``tampered`` key, is no clean
    verdict: it reads as an unreadable one (flagged), as any entry sealing never writes."""
    (source,) = write(mixed_study(1)[1:2], tmp_path)
    sealed = seal_file(source, [people["lee"].card], people["gateway"], tmp_path / "s.sseal")
    for screen in ({"not_screened": "too busy", "policy": "flag"},
                   {"not_screened": "no pixels", "tampered": "no", "policy": "flag"}):  # fmt: skip
        forged = replace(sealed.manifest, screen=screen).signed_by(people["gateway"].sign)
        verdict = screen_verdict(forged)
        assert verdict is not None
        assert verdict.flagged
        assert verdict.not_screened is None
