"""De-identification against the PS3.15 Basic Profile, on real DICOM files and crafted attacks."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

from corpus import dicom_corpus
from scanseal.dicom import DeidKey, Option, deidentify, reidentify
from scanseal.dicom import _profile as profile
from scanseal.dicom.deid import applied_options
from scanseal.errors import AccessDenied
from scanseal.integrity.pixels import pixel_digest

PIXELS = {"PixelData", "FloatPixelData", "DoubleFloatPixelData"}


def corpus_sample() -> list[Path]:
    """Files that carry a patient (most of the corpus); a spread, to keep the suite fast."""
    return [
        p for p in dicom_corpus() if "PatientID" in pydicom.dcmread(p, stop_before_pixels=True)
    ][::4]


def identifying_strings(ds: Dataset) -> set[str]:
    """Values a leak would show: names, IDs and free text of the original (4+ characters)."""
    listed = profile.REMOVE | profile.EMPTY | profile.REPLACE
    found: set[str] = set()
    kept: set[str] = set()  # the same words in attributes the profile keeps (Manufacturer)
    for element in ds.iterall():
        if element.VR not in ("PN", "LO", "SH", "LT", "ST"):
            continue
        text = str(element.value or "").strip()
        if element.keyword in listed and len(text) >= 4 and not text.isdigit():
            found.add(text)
        elif element.keyword not in listed:
            kept.add(text)
    return {t for t in found if not any(t in k for k in kept)}


def assert_profile_holds(out: Dataset, original: Dataset) -> None:
    for element in out.iterall():
        keyword = element.keyword
        assert not element.tag.is_private, element
        assert keyword not in profile.REMOVE, keyword
        assert not 0x6000 <= element.tag.group <= 0x60FF, element
        if keyword in profile.EMPTY:
            assert element.value in (None, "", b"", []), element
        if element.VR == "PN" and keyword != "PatientName":
            assert not element.value, element
        if element.VR in ("DA", "DT", "TM"):
            assert not element.value, element
        if (
            element.VR == "UI"
            and element.value
            and keyword
            not in (
                "SOPClassUID",
                "ReferencedSOPClassUID",
            )
        ):
            assert element.value in UID_dictionary or element.value.startswith("2.25."), element
    assert out.PatientIdentityRemoved == "YES"
    assert out.PatientID != original.get("PatientID")
    assert out.StudyInstanceUID != original.StudyInstanceUID
    assert out.SOPInstanceUID != original.SOPInstanceUID


@pytest.mark.parametrize("path", corpus_sample(), ids=lambda p: p.name)
def test_basic_profile_on_real_files(path: Path, tmp_path: Path) -> None:
    original = pydicom.dcmread(path)
    result = deidentify(original, DeidKey.generate())
    assert_profile_holds(result.dataset, original)
    assert applied_options(result.dataset) == ["113100"]
    written = tmp_path / "out.dcm"
    result.dataset.save_as(written, enforce_file_format=True)
    raw = written.read_bytes()
    for text in identifying_strings(original):
        assert text.encode() not in raw, text
    assert pixel_digest(written) == pixel_digest(path)  # pixels untouched


def test_nested_private_and_unlisted_identifiers_are_removed() -> None:
    ds = Dataset()
    ds.PatientID = "MRN-123456"
    ds.PatientName = "Doe^Jane"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.add_new(0x00091010, "LO", "Doe Jane private")  # private creator-less private element
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data
    ds.add_new(0x60004000, "LT", "overlay comment: Jane Doe")
    item = Dataset()
    item.PerformingPhysicianName = "House^Gregory"  # PN inside a sequence
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.7"
    item.ObservationDateTime = "20240101120000"
    ds.ReferencedImageSequence = Sequence([item])
    ds.OperatorsName = "Smith^Ann"
    ds.InstitutionName = "St Elsewhere"
    out = deidentify(ds, DeidKey.generate()).dataset
    assert_profile_holds(out, ds)
    text = repr(out)
    for leak in ("MRN-123456", "Doe", "House", "Smith", "Elsewhere", "1.2.3.4.5.7"):
        assert leak not in text, leak


def test_round_trip_only_with_the_senders_key() -> None:
    path = Path(str(pydicom.data.get_testdata_file("CT_small.dcm")))
    original = pydicom.dcmread(path)
    key = DeidKey.generate()
    result = deidentify(original, key)
    restored = reidentify(result.dataset, result.token, key)
    assert restored.to_json_dict() == original.to_json_dict()
    assert restored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    with pytest.raises(AccessDenied):
        reidentify(result.dataset, result.token, DeidKey.generate())
    other = deidentify(pydicom.dcmread(path), key)  # same instance again: same new UID
    assert other.dataset.SOPInstanceUID == result.dataset.SOPInstanceUID
    forged = Dataset(result.dataset)
    forged.SOPInstanceUID = "2.25.1"
    with pytest.raises(AccessDenied):
        reidentify(forged, result.token, key)


def test_keyed_mapping_is_consistent_within_a_key_and_unlinkable_across() -> None:
    path = Path(str(pydicom.data.get_testdata_file("CT_small.dcm")))
    ds = pydicom.dcmread(path)
    key = DeidKey.generate()
    a = deidentify(ds, key).dataset
    sibling = pydicom.dcmread(path)
    sibling.SOPInstanceUID = sibling.SOPInstanceUID + ".1"
    b = deidentify(sibling, key).dataset
    assert a.PatientID == b.PatientID
    assert a.StudyInstanceUID == b.StudyInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    c = deidentify(ds, DeidKey.generate()).dataset
    assert c.PatientID != a.PatientID
    assert c.StudyInstanceUID != a.StudyInstanceUID


def test_option_codes_are_recorded_and_applied() -> None:
    path = Path(str(pydicom.data.get_testdata_file("CT_small.dcm")))
    ds = pydicom.dcmread(path)
    ds.PatientSex = "F"
    ds.StationName = "CT-ROOM-2"
    options = [
        Option.RETAIN_UIDS,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.RETAIN_DEVICE_IDENTITY,
        Option.RETAIN_MODIFIED_DATES,
    ]
    out = deidentify(ds, DeidKey.generate(), options).dataset
    assert applied_options(out) == ["113100", "113107", "113108", "113109", "113110"]
    assert all(
        item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence
    )
    assert out.StudyInstanceUID == ds.StudyInstanceUID
    assert out.PatientSex == "F"
    assert out.StationName == "CT-ROOM-2"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert out.StudyDate
    assert out.StudyDate < ds.StudyDate
    assert out.StudyTime == ds.StudyTime
    assert out.PatientName != ds.PatientName
