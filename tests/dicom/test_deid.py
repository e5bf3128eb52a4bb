"""De-identification against PS3.15 Table E.1-1: every row of the table at the top level and two
sequences deep (a generated probe), the IOD Types on real DICOM files, each option, and attacks."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_keyword, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.tag import Tag
from pydicom.uid import UID_dictionary
from pydicom.valuerep import validate_value

from cli_support import run_cli
from corpus import dicom_corpus
from scanseal.dicom import DeidKey, Option, applied_options, deidentify, reidentify
from scanseal.dicom import _profile as profile
from scanseal.errors import AccessDenied, InvalidInput
from scanseal.integrity.pixels import pixel_digest

ROWS = profile.rows()
CT = "1.2.840.10008.5.1.4.1.1.2"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
# Two sequences the table does not list, to carry the probe two levels down.
OUTER, INNER = "AnatomicRegionSequence", "AnatomicRegionModifierSequence"
DUMMY_DATES = {"DA": "19000101", "TM": "000000", "DT": "19000101000000"}


def data_file(name: str) -> Path:
    return Path(str(pydicom.data.get_testdata_file(name)))


def read(name: str) -> Dataset:
    return pydicom.dcmread(data_file(name), force=True)


# --- the table itself


def test_the_table_is_the_standards_and_every_row_has_handling() -> None:
    assert len(ROWS) == 621
    assert "PS3.15 Table E.1-1" in profile.source()
    assert "2024e" in profile.source()
    concepts = codes.cid7050.concepts.values()  # PS3.16, as pydicom has it
    cid7050 = {c.value: c.meaning for c in concepts}
    for row in ROWS.values():
        assert row.action in profile.ACTIONS, row
        assert set(row.options.values()) <= profile.OPTION_VALUES, row
        assert set(row.options) <= set(cid7050), row
        assert row.keyword or row.tag in ("odd", "50xxxxxx", "60xx3000", "60xx4000"), row
    for option in Option:
        assert cid7050[option.value] == option.meaning
    assert ROWS["00080080"].action == "X/Z/D"
    assert ROWS["00080080"].options == {"113112": "K"}


# --- the probe: every row at the top level and two sequences deep


def probe_tag(row: profile.Row) -> int:
    concrete = {"odd": 0x00091001, "50xxxxxx": 0x50003000}
    return concrete.get(row.tag) or int(row.tag.replace("xx", "00"), 16)


def probe_value(tag: int, vr: str) -> object:
    """A value valid for the VR that names its tag, so a leak is traceable to its row."""
    mark = f"P{tag:08X}"
    values: dict[str, object] = {
        "DA": "20240315", "TM": "101112", "DT": "20240315101112", "PN": f"Probe^{mark}",
        "UI": f"1.2.826.0.1.3680043.10.1.{tag}", "AS": "042Y", "IS": "7", "DS": "1.5",
        "AT": 0x00100010, "FL": 1.5, "FD": 1.5, "UR": f"http://example.org/{mark}",
    }  # fmt: skip
    if vr in values:
        return values[vr]
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        return 7
    if vr.startswith("O") or vr == "UN":
        return mark.encode()[:8]
    if vr == "SQ":
        item = Dataset()
        item.CodeMeaning = "probe item"
        return Sequence([item])
    return mark


def probe_vr(tag: int) -> str:
    return "OB" if tag == 0x00091001 else dictionary_VR(tag).split(" or ")[0]


def probe_items(sop_class: str) -> Dataset:
    items = Dataset()
    for row in ROWS.values():
        tag = probe_tag(row)
        if row.tag == "odd":
            items.add_new(0x00090010, "LO", "PROBE CREATOR")
        items.add_new(tag, probe_vr(tag), probe_value(tag, probe_vr(tag)))
    items.SOPClassUID = sop_class
    return items


def probe(sop_class: str = CT) -> Dataset:
    """Every row of the table at the top level and in OUTER > INNER."""
    top = probe_items(sop_class)
    inner, outer = Dataset(), probe_items(sop_class)
    for element in probe_items(sop_class):
        inner.add(element)
    outer[INNER] = DataElement(Tag(INNER), "SQ", Sequence([inner]))
    top[OUTER] = DataElement(Tag(OUTER), "SQ", Sequence([outer]))
    return top


def levels(ds: Dataset) -> list[tuple[str, Dataset]]:
    outer = ds[OUTER].value[0]
    return [("", ds), (OUTER, outer), (INNER, outer[INNER].value[0])]


def probe_marks(ds: Dataset) -> set[str]:
    """The probe marks (P + tag) that survive anywhere in ``ds``."""
    text = "\n".join(str(e.value) for e in ds.iterall())
    return set(re.findall(r"P[0-9A-F]{8}", text))


def test_table_rows_outside_the_probe_are_none() -> None:
    assert OUTER not in {r.keyword for r in ROWS.values()}
    assert INNER not in {r.keyword for r in ROWS.values()}


def assert_valid(element: DataElement) -> None:
    values = element.value if element.VM > 1 else [element.value]
    for value in values:
        validate_value(element.VR, value, 2)  # 2: raise on a value invalid for its VR


def expected(action: str, kind: str) -> str:
    """PS3.15 E.3.1: X/Z, X/D, Z/D, X/Z/D and X/Z/U* by the attribute's Type (1, 2 or 3) in the
    IOD; a Z on a Type 1 attribute takes its dummy."""
    if action in ("X", "D", "U"):
        return action
    choices = action.split("/")
    if kind in ("1", "2") and "U*" in choices:
        return "U"  # a reference sequence the IOD requires keeps its references, re-mapped
    if kind == "1":
        return "D"
    if kind == "2" or "X" not in choices:
        return "Z"
    return "X"


def assert_outcome(
    action: str, old: DataElement, new: DataElement | None, key: DeidKey, what: str
) -> None:
    if action == "X":
        assert new is None, what
        return
    assert new is not None, what
    if old.keyword == "PatientID":
        assert new.value == key.pseudonym(str(old.value)), what
    elif old.keyword == "PatientName" and new.value:
        assert str(new.value).startswith("ANON^SS"), what  # the pseudonym's name, top level
    elif action == "Z":
        assert new.value in (None, "", b"") or (new.VR == "SQ" and not new.value), what
    elif new.VR == "SQ":
        assert len(new.value) == len(old.value), what  # the structure stays, items cleaned
    elif action == "U":
        assert new.value == key.uid(str(old.value)), what
    else:
        assert new.value not in (None, "", b"", old.value), what
        assert_valid(new)
        if new.VR in DUMMY_DATES:
            assert new.value == DUMMY_DATES[new.VR], what


@pytest.mark.parametrize("sop_class", [CT, RT_PLAN, "1.2.3.4.5"], ids=["ct", "rtplan", "unknown"])
def test_every_row_of_the_table_at_every_depth(sop_class: str) -> None:
    key = DeidKey.generate()
    original = probe(sop_class)
    out = deidentify(original, key).dataset
    for (parent, before), (_, after) in zip(levels(original), levels(out), strict=True):
        for row in ROWS.values():
            tag = probe_tag(row)
            old = before[tag]
            kept = after.get(tag)
            kind = profile.required_type(row.keyword, parent, profile.iod_for(sop_class))
            what = f"{row.name} {row.action} Type {kind} in {parent or 'top level'}"
            assert_outcome(expected(row.action, kind), old, kept, key, what)
    assert not probe_marks(out), "a probe value leaked"
    assert not any(e.tag.is_private for e in out.iterall())
    assert not any(e.tag.group >> 8 in (0x50, 0x60) for e in out.iterall())


def test_the_iod_decides_compound_actions() -> None:
    """X/Z/D and friends by the object's IOD, as PS3.3 gives the Types."""
    ct = deidentify(probe(CT), DeidKey.generate()).dataset
    plan = deidentify(probe(RT_PLAN), DeidKey.generate()).dataset
    assert "OperatorsName" not in ct  # Type 3 in General Series
    assert "OperatorsName" in plan
    assert not plan.OperatorsName
    assert "AcquisitionDateTime" not in ct  # X/Z/D, Type 3 in CT Image
    assert "RTPlanDate" in plan
    assert not plan.RTPlanDate
    assert "RTPlanDate" not in ct
    assert "ProtocolName" not in ct
    assert ct.RTPlanLabel == "ANONYMIZED"  # D wherever it is
    assert "SeriesDescription" not in ct
    assert "StationName" not in ct
    assert not ct.StudyDate
    assert not ct.AccessionNumber
    assert "DigitalSignaturesSequence" not in ct  # X: sequences go whole
    assert "ReferencedPatientPhotoSequence" not in ct[OUTER][0][INNER][0]


def test_patient_id_is_replaced_at_every_depth() -> None:
    key = DeidKey.generate()
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.PatientID = CT, "1.2.3.9", "MRN-777"
    node = ds
    for _ in range(31):  # as deep as a real corpus nests it
        item = Dataset()
        item.PatientID = "MRN-777"
        node.ReferencedSeriesSequence = Sequence([item])
        node = item
    out = deidentify(ds, key).dataset
    found = [e.value for e in out.iterall() if e.keyword == "PatientID"]
    assert len(found) == 32
    assert set(found) == {key.pseudonym("MRN-777")}


# --- the options


def shifted(value: str, days: int) -> str:
    day = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    return (day - datetime.timedelta(days=days)).strftime("%Y%m%d") + value[8:]


@pytest.mark.parametrize("option", [o for o in Option if o is not Option.BASIC], ids=str)
def test_each_option_keeps_or_cleans_its_column(option: Option) -> None:
    key = DeidKey.generate()
    original = probe(CT)
    out = deidentify(original, key, [option]).dataset
    assert applied_options(out) == ["113100", option.value]
    days = key.day_shift(str(original.PatientID))
    column = [r for r in ROWS.values() if option.value in r.options]
    assert column
    for (_, before), (_, after) in zip(levels(original), levels(out), strict=True):
        for row in column:
            tag = probe_tag(row)
            old, new = before[tag], after.get(tag)
            if row.keyword == "PatientID":
                continue
            assert new is not None, row
            if row.options[option.value] == "K":
                assert new.value == old.value, row
            elif old.VR in ("DA", "DT"):
                assert new.value == shifted(old.value, days), row
            elif old.VR == "SQ":
                assert len(new.value) == len(old.value), row
            elif old.VR == "PN":
                assert new.value == "ANONYMOUS", row
            elif old.VR != "TM":
                assert str(new.value), row  # kept, cleaned (the probe's marks are not names)


def test_options_record_their_codes_and_dates_exclude_each_other() -> None:
    ds = read("CT_small.dcm")
    chosen = [Option.RETAIN_UIDS, Option.RETAIN_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS]
    out = deidentify(ds, DeidKey.generate(), chosen).dataset
    assert applied_options(out) == ["113100", "113105", "113107", "113110"]
    assert {i.CodingSchemeDesignator for i in out.DeidentificationMethodCodeSequence} == {"DCM"}
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert out.StudyInstanceUID == ds.StudyInstanceUID
    assert out.StudyDate < ds.StudyDate
    assert out.StudyTime == ds.StudyTime
    full = deidentify(ds, DeidKey.generate(), [Option.RETAIN_FULL_DATES]).dataset
    assert full.StudyDate == ds.StudyDate
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    with pytest.raises(InvalidInput):
        deidentify(ds, DeidKey.generate(), [Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES])


def test_clean_descriptors_strikes_identifying_words() -> None:
    ds = read("CT_small.dcm")
    ds.PatientName = "Kowalski^Jan"
    ds.InstitutionName = "St Elsewhere"
    ds.SeriesDescription = "Kowalski chest St Elsewhere 0612345678"
    ds.StudyDescription = "Abdomen"
    out = deidentify(ds, DeidKey.generate(), [Option.CLEAN_DESCRIPTORS]).dataset
    assert out.SeriesDescription == "XXXXXXXX chest XXXXXXXXXXXX XXXXXXXXXX"
    assert out.StudyDescription == "Abdomen"
    assert "SeriesDescription" not in deidentify(ds, DeidKey.generate()).dataset


def test_cli_flags_select_the_options(tmp_path: Path, monkeypatch, capsys) -> None:
    key = tmp_path / "deid.key"
    assert run_cli(monkeypatch, capsys, "deid-key", str(key)).code == 0
    out = tmp_path / "out"
    args = ["deid", str(data_file("CT_small.dcm")), "-o", str(out), "--key", str(key)]
    flags = ["--keep", "institution", "--keep", "device", "--clean", "descriptors"]
    flags += ["--clean", "structured-content", "--keep", "full-dates"]
    result = run_cli(monkeypatch, capsys, *args, *flags)
    assert result.code == 0, result.err
    (written,) = out.glob("*.dcm")
    recorded = applied_options(pydicom.dcmread(written))
    assert recorded == ["113100", "113104", "113105", "113106", "113109", "113112"]
    bad = run_cli(monkeypatch, capsys, *args, "--clean", "pixels")
    assert bad.code == 2
    assert "--clean takes descriptors, structured-content" in bad.err


# --- real files: the Types of their IODs


@pytest.mark.parametrize(
    "name", ["test-SR.dcm", "waveform_ecg.dcm", "emri_small.dcm", "eCT_Supplemental.dcm"]
)
def test_type_1_content_date_and_time_stay_valid(name: str) -> None:
    out = deidentify(read(name), DeidKey.generate()).dataset
    assert out.ContentDate == "19000101"
    assert out.ContentTime == "000000"


def test_enhanced_equipment_and_acquisition_stay_valid() -> None:
    original = read("emri_small.dcm")
    out = deidentify(original, DeidKey.generate()).dataset
    assert "DeviceSerialNumber" in original
    assert out.DeviceSerialNumber == "ANONYMIZED"
    assert out.AcquisitionDateTime == "19000101000000"
    ct = deidentify(read("CT_small.dcm"), DeidKey.generate()).dataset
    assert "DeviceSerialNumber" not in ct  # Type 3 in General Equipment


@pytest.mark.parametrize("name", ["rtplan.dcm", "rtstruct.dcm"])
def test_rt_operators_name_stays_empty(name: str) -> None:
    original = read(name)
    out = deidentify(original, DeidKey.generate()).dataset
    assert "OperatorsName" in original
    assert "OperatorsName" in out
    assert not out.OperatorsName


def test_rt_plan_labels_and_names_are_replaced() -> None:
    out = deidentify(read("rtplan.dcm"), DeidKey.generate()).dataset
    text = "\n".join(str(e.value) for e in out.iterall())
    for leak in ("Plan1", "unit001", "PTV", "iso"):
        assert leak not in text.split("\n"), leak
    assert out.RTPlanLabel == "ANONYMIZED"


def test_required_source_image_references_are_kept_and_re_mapped() -> None:
    """X/Z/U*: SourceImageSequence is Type 2 in a segmentation's Derivation Image macro; emptied,
    the instances its Common Instance Reference module lists would be referenced by nothing."""
    key = DeidKey.generate()
    original = read("liver.dcm")
    out = deidentify(original, key).dataset
    for before, after in zip(
        original.PerFrameFunctionalGroupsSequence, out.PerFrameFunctionalGroupsSequence, strict=True
    ):
        old = before.DerivationImageSequence[0].SourceImageSequence[0]
        new = after.DerivationImageSequence[0].SourceImageSequence[0]
        assert new.ReferencedSOPInstanceUID == key.uid(old.ReferencedSOPInstanceUID)
        assert new.ReferencedSOPClassUID == old.ReferencedSOPClassUID
    ct = deidentify(probe(CT), key).dataset
    assert "SourceImageSequence" not in ct  # Type 3 in the CT Image IOD's General Image


def test_instance_creator_uid_is_replaced() -> None:
    key = DeidKey.generate()
    original = read("CT_small.dcm")
    out = deidentify(original, key).dataset
    assert out.InstanceCreatorUID == key.uid(original.InstanceCreatorUID)


def walk_sr(items: Sequence) -> list[str]:
    """The value types of an SR tree, in order: its structure."""
    found = []
    for item in items:
        found.append(str(item.get("ValueType", "")))
        found += walk_sr(item.get("ContentSequence", []))
    return found


def text_items(ds: Dataset) -> list[str]:
    return [str(e.value) for e in ds.iterall() if e.keyword == "TextValue"]


def test_sr_content_keeps_its_structure() -> None:
    original = read("test-SR.dcm")
    original.ContentSequence[0].TextValue = "Seen by Dr Kowalski at 0612345678"
    original.ReferringPhysicianName = "Kowalski^Jan"
    plain = deidentify(original, DeidKey.generate()).dataset  # the table: D, dummies inside
    assert walk_sr(plain.ContentSequence) == walk_sr(original.ContentSequence)
    assert set(text_items(plain)) == {"ANONYMIZED"}
    cleaned = deidentify(original, DeidKey.generate(), [Option.CLEAN_STRUCTURED_CONTENT]).dataset
    assert walk_sr(cleaned.ContentSequence) == walk_sr(original.ContentSequence)
    texts = text_items(cleaned)
    assert "Seen by Dr XXXXXXXX at XXXXXXXXXX" in texts
    assert len(set(texts)) > 1  # the other text items are kept, not dummies


# --- what must keep holding, on the corpus


def corpus_sample() -> list[Path]:
    """Files that carry a patient (most of the corpus); a spread, to keep the suite fast."""
    return [
        p for p in dicom_corpus() if "PatientID" in pydicom.dcmread(p, stop_before_pixels=True)
    ][::4]


def identifying_strings(ds: Dataset) -> set[str]:
    """Values a leak would show: text of the table's attributes (4+ characters) that no
    attribute outside the table repeats (Manufacturer)."""
    listed = {r.keyword for r in ROWS.values()}
    found: set[str] = set()
    kept: set[str] = set()
    for element in ds.iterall():
        if element.VR not in ("PN", "LO", "SH", "LT", "ST"):
            continue
        text = str(element.value or "").strip()
        if element.keyword in listed and len(text) >= 4 and not text.isdigit():
            found.add(text)
        elif element.keyword not in listed:
            kept.add(text)
    ours = "ANONYMIZED ANONYMOUS ANON^"  # the dummies themselves
    return {t for t in found if t not in ours and not any(t in k for k in kept)}


def assert_profile_holds(out: Dataset, original: Dataset) -> None:
    for element in out.iterall():
        assert not element.tag.is_private, element
        assert element.tag.group >> 8 not in (0x50, 0x60), element  # curves, overlays
        if element.VR in DUMMY_DATES and element.value:
            assert element.value == DUMMY_DATES[element.VR], element
        if element.VR == "PN" and element.keyword != "PatientName" and element.value:
            assert element.value == "ANONYMOUS", element
        if element.VR == "UI" and element.value and element.keyword != "SOPClassUID":
            assert element.value in UID_dictionary or element.value.startswith("2.25."), element
    assert out.PatientIdentityRemoved == "YES"
    assert applied_options(out) == ["113100"]
    assert out.PatientID != original.get("PatientID")
    assert out.StudyInstanceUID != original.StudyInstanceUID
    assert out.SOPInstanceUID != original.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in out.file_meta


@pytest.mark.parametrize("path", corpus_sample(), ids=lambda p: p.name)
def test_basic_profile_on_real_files(path: Path, tmp_path: Path) -> None:
    original = pydicom.dcmread(path)
    result = deidentify(original, DeidKey.generate())
    assert_profile_holds(result.dataset, original)
    written = tmp_path / "out.dcm"
    result.dataset.save_as(written, enforce_file_format=True)
    raw = written.read_bytes()
    for text in identifying_strings(original):
        assert text.encode() not in raw, text
    assert pixel_digest(written) == pixel_digest(path)  # pixels untouched


def test_nested_private_overlays_and_unlisted_names_are_removed() -> None:
    ds = Dataset()
    ds.PatientID, ds.PatientName = "MRN-123456", "Doe^Jane"
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID = CT, "1.2.3.4.5.6", "1.2.3.4"
    ds.add_new(0x00091010, "LO", "Doe Jane private")
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data
    ds.add_new(0x60000010, "US", 512)  # overlay rows: not in the table, still an overlay
    item = Dataset()
    item.add_new(0x00111010, "LO", "nested private")
    item.PerformingPhysicianName = "House^Gregory"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.7"
    item.ObservationDateTime = "20240101120000"
    ds.ReferencedImageSequence = Sequence([item])
    ds.OperatorsName, ds.InstitutionName = "Smith^Ann", "St Elsewhere"
    out = deidentify(ds, DeidKey.generate()).dataset
    text = repr(out)
    for leak in ("MRN-123456", "Doe", "House", "Smith", "Elsewhere", "1.2.3.4.5.7", "private"):
        assert leak not in text, leak
    assert not any(e.tag.group in (0x0009, 0x0011, 0x6000) for e in out.iterall())


def test_a_value_invalid_for_its_vr_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid for its VR"):
        deidentify(read("badVR.dcm"), DeidKey.generate())  # an IS of "1A"


def test_round_trip_only_with_the_senders_key() -> None:
    original = read("CT_small.dcm")
    key = DeidKey.generate()
    result = deidentify(original, key)
    restored = reidentify(result.dataset, result.token, key)
    assert restored.to_json_dict() == original.to_json_dict()
    with pytest.raises(AccessDenied):
        reidentify(result.dataset, result.token, DeidKey.generate())
    other = deidentify(read("CT_small.dcm"), key)  # same instance again: same new UID
    assert other.dataset.SOPInstanceUID == result.dataset.SOPInstanceUID
    forged = Dataset(result.dataset)
    forged.SOPInstanceUID = "2.25.1"
    with pytest.raises(AccessDenied):
        reidentify(forged, result.token, key)


def test_round_trip_restores_a_replaced_document_and_sr_content() -> None:
    key = DeidKey.generate()
    for name in ("test-SR.dcm", "rtplan.dcm"):
        original = read(name)
        result = deidentify(original, key)
        restored = reidentify(result.dataset, result.token, key)
        assert restored.to_json_dict() == original.to_json_dict(), name


def test_keyed_mapping_is_consistent_within_a_key_and_unlinkable_across() -> None:
    ds = read("CT_small.dcm")
    key = DeidKey.generate()
    a = deidentify(ds, key).dataset
    sibling = read("CT_small.dcm")
    sibling.SOPInstanceUID = sibling.SOPInstanceUID + ".1"
    b = deidentify(sibling, key).dataset
    assert a.PatientID == b.PatientID
    assert a.StudyInstanceUID == b.StudyInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    c = deidentify(ds, DeidKey.generate()).dataset
    assert c.PatientID != a.PatientID
    assert c.StudyInstanceUID != a.StudyInstanceUID


def test_dictionary_knows_every_named_row() -> None:
    for row in ROWS.values():
        if row.keyword:
            assert dictionary_keyword(int(row.tag, 16)) == row.keyword
