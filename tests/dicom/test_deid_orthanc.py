"""ScanSeal's de-identification beside Orthanc 1.10's: nothing Orthanc's PS3.15 profile removes or
replaces may pass through ScanSeal unchanged, at any depth.

Orthanc listens on all interfaces, so ``test_beside_orthanc_in_a_private_network_namespace``
re-runs this file under ``unshare -n`` with only loopback up (as test_engines.py does) and the
comparison runs in there. Every corpus file (tests/dicom/deid_corpus.py) is uploaded, anonymized
with ``POST /instances/{id}/anonymize`` and an empty body (Orthanc's default: its PS3.15 Basic
Profile, private tags removed) and de-identified as ``scanseal deid`` does with no option. A gap
is an attribute of the original, found by tag at its place in the tree (sequence, item, tag),
with a non-empty value, that Orthanc removed or gave another value and that ScanSeal kept with
the same value; a sequence Orthanc removed counts when ScanSeal keeps it at all.

Needs root (for the namespace) and Orthanc (`make dicom-tools`); skips otherwise.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from tests.dicom.deid_corpus import corpus

from scanseal.dicom import DeidKey, deidentify

HERE = Path(__file__)
INSIDE = os.environ.get("SCANSEAL_DEID_NETNS") == "1"
MISSING = [tool for tool in ("Orthanc", "unshare", "ip") if shutil.which(tool) is None]
PIXELS = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData"})

# Differences with a reason, by keyword: a place is allowed when the attribute or a sequence
# that holds it is listed here. Nothing else Orthanc removes or replaces may pass unchanged.
ALLOWED: dict[str, str] = {
    "ContentSequence": "PS3.15 2024e gives Content Sequence action D (Orthanc 1.10 empties it): "
    "ScanSeal keeps the SR tree (relationship and value types, concept names, coded concepts, "
    "references with re-mapped UIDs) and replaces every text, name, date and UID in it, so the "
    "SR keeps the content its IOD requires (Type 1C)",
}


def allowed(place: str) -> bool:
    """Whether ``place`` (``Seq[0].Keyword``) or a sequence above it has a reason in ALLOWED."""
    return any(part.split("[", 1)[0] in ALLOWED for part in place.split("."))


def gaps(
    original: Dataset, theirs: Dataset | None, ours: Dataset | None, at: str = ""
) -> list[str]:
    """Places (``Seq[0].Keyword``) of what Orthanc removed or replaced and ScanSeal kept."""
    found: list[str] = []
    for element in original:
        if element.tag.element == 0 or element.keyword in PIXELS or element.is_empty:
            continue
        place = at + (element.keyword or str(element.tag))
        mine = ours.get(element.tag) if ours is not None else None
        other = theirs.get(element.tag) if theirs is not None else None
        if mine is None or mine.is_empty:
            continue  # ScanSeal removed or emptied it
        if element.VR == "SQ":
            if other is None:
                found.append(place)  # Orthanc removed the sequence, ScanSeal kept it
                continue
            for index, item in enumerate(element.value):
                their_item = other.value[index] if index < len(other.value) else None
                my_item = mine.value[index] if index < len(mine.value) else None
                found += gaps(item, their_item, my_item, f"{place}[{index}].")
        elif (other is None or other.value != element.value) and mine.value == element.value:
            found.append(place)
    return found


def keyword_of(place: str) -> str:
    return place.rsplit(".", 1)[-1]


@pytest.mark.integration
@pytest.mark.skipif(INSIDE, reason="this is the namespace's own run")
@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
@pytest.mark.skipif(bool(MISSING), reason=f"not installed: {MISSING} (make dicom-tools)")
def test_beside_orthanc_in_a_private_network_namespace() -> None:
    env = dict(os.environ, SCANSEAL_DEID_NETNS="1")
    inner = f"ip link set lo up && exec {sys.executable} -m pytest -q -p no:cacheprovider {HERE}"
    result = subprocess.run(["unshare", "-n", "sh", "-c", inner], cwd=HERE.parents[2], env=env,
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.dicom.engines import Orthanc

    server = Orthanc(tmp_path_factory.mktemp("orthanc"), "ORTHANC", {}).start()
    yield server.url
    server.stop()


def anonymized_by_orthanc(url: str, path: Path) -> Dataset:
    """Orthanc's default anonymization of ``path``; the instance is deleted again afterwards
    (two corpus files share a SOP Instance UID)."""
    upload = httpx.post(f"{url}/instances", content=path.read_bytes(), timeout=30)
    upload.raise_for_status()
    instance = upload.json()["ID"]
    answer = httpx.post(f"{url}/instances/{instance}/anonymize", json={}, timeout=60)
    assert answer.status_code == 200, answer.text
    httpx.delete(f"{url}/instances/{instance}", timeout=30).raise_for_status()
    return pydicom.dcmread(io.BytesIO(answer.content))


@pytest.mark.skipif(not INSIDE, reason="runs inside the private network namespace")
def test_scanseal_keeps_nothing_orthanc_removes_or_replaces(orthanc: str) -> None:
    key = DeidKey.generate()
    found: dict[str, set[str]] = {}  # keyword -> "file: place"
    for path in corpus():
        original = pydicom.dcmread(path)
        theirs = anonymized_by_orthanc(orthanc, path)
        ours = deidentify(original, key, []).dataset
        assert ours.PatientIdentityRemoved == theirs.PatientIdentityRemoved == "YES", path.name
        for place in gaps(original, theirs, ours):
            found.setdefault(keyword_of(place), set()).add(f"{path.name}: {place}")
    report = os.environ.get("SCANSEAL_DEID_GAPS")
    if report:  # the current list, allowed differences included, for docs/DICOM.md
        Path(report).write_text(json.dumps({k: sorted(v) for k, v in sorted(found.items())}))
    new = {k: [p for p in v if not allowed(p.split(": ", 1)[1])] for k, v in found.items()}
    new = {k: sorted(v) for k, v in new.items() if v}
    assert not new, f"Orthanc removes or replaces these, ScanSeal keeps them: {new}"
    used = {part for v in found.values() for p in v for part in re.findall(r"\w+", p)}
    assert not set(ALLOWED) - used, f"no longer a difference: {set(ALLOWED) - used}"


def test_a_gap_is_found_at_any_depth() -> None:
    """The comparison itself: a nested value Orthanc replaced and ScanSeal kept is a gap; one
    ScanSeal emptied is not; a sequence Orthanc removed is a gap when ScanSeal keeps it."""
    original = Dataset()
    item = Dataset()
    item.PatientID = "12345"
    item.CodeValue = "T-1"
    original.OtherPatientIDsSequence = [item]
    original.ProcedureCodeSequence = [Dataset()]
    original.ProcedureCodeSequence[0].CodeMeaning = "CT head"
    theirs = Dataset()
    their_item = Dataset()
    their_item.PatientID = "ANON"
    their_item.CodeValue = "T-1"
    theirs.OtherPatientIDsSequence = [their_item]
    ours = Dataset()
    our_item = Dataset()
    our_item.PatientID = "12345"
    our_item.CodeValue = "T-1"
    ours.OtherPatientIDsSequence = [our_item]
    ours.ProcedureCodeSequence = original.ProcedureCodeSequence
    assert set(gaps(original, theirs, ours)) == {
        "OtherPatientIDsSequence[0].PatientID",
        "ProcedureCodeSequence",
    }
    our_item.PatientID = ""
    del ours.ProcedureCodeSequence
    assert gaps(original, theirs, ours) == []
    assert allowed("ContentSequence[2].ContentSequence[0].ValueType")
    assert not allowed("OtherPatientIDsSequence[0].PatientID")
