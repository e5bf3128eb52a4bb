"""De-identified objects stay valid: dicom3tools' dciodvfy reports no error on an output that it
does not report on the input, for every file of the corpus (tests/dicom/deid_corpus.py).

Errors are compared as normalised messages, not counted: values, UIDs and quoted strings are
masked (de-identification changes them), and "missing" and "empty" are one failure for a Type 1
or 1C attribute (an input whose Type 1 attribute was empty is not made worse by removing it).
Needs `dciodvfy` (Debian dicom3tools, installed by `make dicom-tools`); skips without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian
from tests.dicom.deid_corpus import corpus

from scanseal.dicom import DeidKey, deidentify
from scanseal.dicom.deid_files import encode

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy is not installed (make dicom-tools: Debian dicom3tools)"
)


_UID = re.compile(r"\b\d+(\.\d+){2,}\b|(?<=UID )\S+$")  # a UID, or any value named as one
_VALUE = re.compile(r" = <[^>]*>")
_QUOTED = re.compile(r'"[^"]*"')
_TYPE1 = re.compile(r"^(Missing attribute|Empty attribute \(no value\)) (Type 1C?) ")


def errors(path: Path) -> set[str]:
    """dciodvfy's error messages for ``path``, normalised."""
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, check=False,
                         timeout=60)  # fmt: skip
    found = set()
    for line in (run.stdout + run.stderr).splitlines():
        if "Error - " not in line:
            continue
        message = line.split("Error - ", 1)[1].strip()
        message = _TYPE1.sub(r"Missing or empty attribute \2 ", message)
        message = _QUOTED.sub('"…"', _VALUE.sub(" = <…>", message))
        found.add(_UID.sub("<uid>", message))
    return found


def readable(path: Path, scratch: Path) -> Path:
    """``path``, or for a deflated file the same data set in Explicit VR Little Endian: this
    dciodvfy does not inflate, it parses the compressed bytes as elements."""
    ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
        return path
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    inflated = scratch / f"inflated-{path.name}"
    ds.save_as(inflated, enforce_file_format=True)
    return inflated


@pytest.fixture(scope="module")
def key() -> DeidKey:
    return DeidKey.generate()


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_dciodvfy_finds_no_new_error_after_deidentify(
    path: Path, key: DeidKey, tmp_path: Path
) -> None:
    output = tmp_path / "deidentified.dcm"
    output.write_bytes(encode(deidentify(pydicom.dcmread(path), key, []).dataset))
    new = errors(readable(output, tmp_path)) - errors(readable(path, tmp_path))
    assert not new, f"dciodvfy errors de-identification added: {sorted(new)}"


def test_the_normalisation_keeps_what_matters() -> None:
    """Attribute and module names survive; values and UIDs do not; missing equals empty."""
    line = "Error - Empty attribute (no value) Type 1 Required Element=<ContentDate> Module=<X>"
    other = "Error - Missing attribute Type 1 Required Element=<ContentDate> Module=<X>"
    type2 = "Error - Missing attribute Type 2 Required Element=<OperatorsName> Module=<RTSeries>"
    value = "Error - Value invalid for this VR - (0x0008,0x1155) UI [1] = <1.2.3.4> - Bad"
    masked = {
        _TYPE1.sub(r"Missing or empty attribute \2 ", m.split("Error - ")[1]) for m in (line, other)
    }
    assert masked == {"Missing or empty attribute Type 1 Required Element=<ContentDate> Module=<X>"}
    assert "OperatorsName" in _TYPE1.sub("", type2.split("Error - ")[1])
    assert _VALUE.sub(" = <…>", value).endswith("UI [1] = <…> - Bad")
    reference = "but have IMAGE ReferencedSOPInstanceUID {}"
    assert _UID.sub("<uid>", reference.format("0")) == _UID.sub("<uid>", reference.format("2.25.7"))
