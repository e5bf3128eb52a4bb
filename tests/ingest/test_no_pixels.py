"""DICOM objects without pixels (SR, KOS, PR, RT plan, encapsulated PDF) are ingested as such,
and their content digest stands for the pixel digest (docs/INGEST.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from scanseal.errors import InvalidInput
from scanseal.ingest import read_image, validate
from scanseal.integrity.pixels import CONTENT_DIGEST_DOMAIN, content_digest, pixel_digest
from study_objects import encapsulated_pdf, key_objects, mixed_study, presentation_state, write

RTPLAN_CONTENT_DIGEST = "162ef74e698bc2ae9c0b72e0c4008f2ce5b8bf81ce8bc6788bb569b190e5eb7e"
"""docs/INGEST.md's vector: the content digest of pydicom's rtplan.dcm."""


def test_every_object_without_pixels_is_ingested_with_no_frames(tmp_path: Path):
    paths = write(mixed_study(1), tmp_path)
    kinds = {}
    for path in paths:
        image = read_image(path)
        kinds[image.metadata.modality] = image.has_pixels
        if not image.has_pixels:
            meta = image.metadata
            assert (meta.rows, meta.columns, meta.frames, meta.bits_allocated) == (0, 0, 0, 0)
            assert meta.study_instance_uid == pydicom.dcmread(path).StudyInstanceUID
            assert validate(path) == meta  # nothing to decode, nothing refused
            with pytest.raises(InvalidInput, match="without Pixel Data: it has no frames"):
                image.frame(0)
    assert kinds == {"CT": True, "RTPLAN": False, "SR": False, "KO": False, "PR": False,
                     "DOC": False}  # fmt: skip


def test_the_content_digest_vector():
    path = Path(str(get_testdata_file("rtplan.dcm")))
    assert pixel_digest(path).hex() == RTPLAN_CONTENT_DIGEST
    assert content_digest(read_image(path)).hex() == RTPLAN_CONTENT_DIGEST


def test_the_content_digest_survives_what_transfers_change(tmp_path: Path):
    """Another uncompressed transfer syntax, a rewritten meta header, group lengths: same
    digest; one element value changed: another."""
    original = Path(str(get_testdata_file("rtplan.dcm")))  # implicit VR
    ds = pydicom.dcmread(original)
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationVersionName = "OTHER_PACS"
    ds.add_new(0x300A0000, "UL", 1234)  # a group length, which carries no information
    moved = tmp_path / "explicit.dcm"
    ds.save_as(moved, enforce_file_format=True)
    assert pixel_digest(moved) == pixel_digest(original)
    ds.RTPlanLabel = "Plan2"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed, enforce_file_format=True)
    assert pixel_digest(changed) != pixel_digest(original)


def test_the_content_digest_is_domain_separated_from_plain_hashes(tmp_path: Path):
    (path,) = write([encapsulated_pdf("1.2.3.4")], tmp_path)
    digest = pixel_digest(path)
    assert digest != hashlib.sha256(path.read_bytes()).digest()
    assert CONTENT_DIGEST_DOMAIN == b"scanseal/content/v1"


@pytest.mark.parametrize("make", [key_objects, presentation_state], ids=["kos", "pr"])
def test_nested_references_count(tmp_path: Path, make):
    """An edit inside a sequence item (the referenced instance) changes the digest."""
    (ct,) = mixed_study(1)[:1]
    ds = make(ct)
    (first,) = write([ds], tmp_path / "a")
    item = ds[next(e.tag for e in ds if e.VR == "SQ" and e.keyword != "ConceptNameCodeSequence")]
    item.value[0][next(iter(item.value[0].keys()))].value = "1.2.3"  # some nested UID or value
    (second,) = write([ds], tmp_path / "b")
    assert pixel_digest(first) != pixel_digest(second)


def test_an_image_whose_pixels_are_missing_is_still_refused(tmp_path: Path):
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    del ds.PixelData
    path = tmp_path / "ct-no-pixels.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InvalidInput, match=r"without Pixel Data .* declares an image"):
        read_image(path)


def test_a_truncated_object_without_pixels_is_refused():
    with pytest.raises(InvalidInput, match=r"truncated|malformed"):
        read_image(Path(str(get_testdata_file("rtplan_truncated.dcm"))))
