"""Malformed, truncated, inconsistent and oversized inputs: InvalidInput with one clear line.

The inputs are the committed files of tests/vectors/malformed (see its README: each is derived
from a real file by truncation, byte corruption or an attribute edit, or written from scratch),
plus a directory and a missing path; every public entry point must refuse each of them without
a library exception escaping. The committed bytes are checked against their generator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.uid import RLELossless

from corpus import make_jpeg, make_png
from scanseal.errors import InvalidInput
from scanseal.ingest import preprocess, read_metadata, validate
from scanseal.integrity.pixels import pixel_digest
from vectors import make_malformed as malformed

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

JPEG_BASELINE_UID = "1.2.840.10008.1.2.4.50"

Case = tuple[str, Callable[[Path], Path], str]

# The committed files of tests/vectors/malformed, plus two inputs git cannot hold.
CASES: list[Case] = [
    *((c.name, lambda _t, path=c.path: path, c.expected) for c in malformed.CASES),
    ("directory", lambda t: t, "not a regular file"),
    ("missing file", lambda t: t / "missing.dcm", "not a regular file"),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_one_line(tmp_path, build, expected):
    path = build(tmp_path)
    for entry_point in (validate, pixel_digest, preprocess):
        with pytest.raises(InvalidInput) as info:
            entry_point(path)
        message = str(info.value)
        assert "\n" not in message
        assert "\r" not in message
        assert message.startswith(f"{path.name}: "), message
        assert expected in message, message


def test_at_least_25_committed_files():
    files = sorted(p for p in malformed.DIRECTORY.iterdir() if p != malformed.README)
    assert files == sorted(c.path for c in malformed.CASES)
    assert len(files) >= 25
    assert sum(p.stat().st_size for p in files) < 1 << 20


def test_readme_lists_every_file():
    readme = malformed.README.read_text()
    for case in malformed.CASES:
        assert f"| `{case.file}` | {case.why} |" in readme


def test_committed_files_are_what_the_generator_makes(tmp_path):
    """The files cannot drift from their recipe (byte-exact only with the recorded libraries)."""
    recorded, here = malformed.README.read_text(), malformed.toolchain()
    if f"Generated with: {here}\n" not in recorded:
        pytest.skip(f"the files were generated with other library versions than {here}")
    malformed.generate(tmp_path)
    for case in malformed.CASES:
        assert (tmp_path / case.file).read_bytes() == case.path.read_bytes(), case.file
    assert (tmp_path / malformed.README.name).read_text() == recorded


def test_header_problems_are_found_without_decoding():
    """read_metadata alone refuses a bomb and a truncation: nothing needs decoding to know."""
    for name in ("bomb-pixels-per-frame.dcm", "truncated-native.dcm", "bomb-total-bytes.dcm"):
        with pytest.raises(InvalidInput):
            read_metadata(malformed.DIRECTORY / name)


def test_pillow_bomb_error_is_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = make_png(tmp_path / "small.png", 48, 64)
    with pytest.raises(InvalidInput, match=r"small\.png: decompression bomb"):
        validate(path)


def test_raster_file_size_limit(tmp_path, monkeypatch):
    import scanseal.ingest._raster as raster

    monkeypatch.setattr(raster, "MAX_RASTER_FILE_BYTES", 100)
    path = make_jpeg(tmp_path / "big.jpg")
    with pytest.raises(InvalidInput, match="exceeds the limit of 100"):
        read_metadata(path)


def test_deflated_dataset_within_limits_is_read(tmp_path):
    path = malformed.deflated_bomb(tmp_path)
    assert validate(path).transfer_syntax_uid == "1.2.840.10008.1.2.1.99"


def test_deflated_bomb_is_refused(tmp_path, monkeypatch):
    import scanseal.ingest._dicom as dicom

    monkeypatch.setattr(dicom, "MAX_DECODED_BYTES", 64)
    with pytest.raises(InvalidInput, match="decompression bomb: deflated"):
        read_metadata(malformed.deflated_bomb(tmp_path))


def test_jpeg_transfer_syntax_uid_constant():
    assert pydicom.dcmread(malformed.RGB_JPEG).file_meta.TransferSyntaxUID == JPEG_BASELINE_UID
    assert RLELossless == pydicom.dcmread(malformed.MR_RLE).file_meta.TransferSyntaxUID
