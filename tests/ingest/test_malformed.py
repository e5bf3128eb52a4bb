"""Malformed, truncated, inconsistent and oversized inputs: InvalidInput with one clear line.

Each case builds its file from a real one (truncation, byte corruption, attribute edits) or
from scratch; every public entry point must refuse it without a library exception escaping.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless

from corpus import make_dicom, make_jpeg, make_png
from scanseal.errors import InvalidInput
from scanseal.ingest import preprocess, read_metadata, validate
from scanseal.integrity.pixels import pixel_digest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MR_SMALL = Path(get_testdata_file("MR_small.dcm"))  # native, 64×64, 16-bit
MR_RLE = Path(get_testdata_file("MR_small_RLE.dcm"))
RGB_JPEG = Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
JPEG_BASELINE_UID = "1.2.840.10008.1.2.4.50"


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _edited(source: Path, tmp: Path, name: str, **changes: object) -> Path:
    """Copy a real DICOM file with some attributes changed (or deleted when the value is None)."""
    ds = pydicom.dcmread(source)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path = tmp / name
    ds.save_as(path)
    return path


def _truncated(source: Path, tmp: Path, name: str, keep: float) -> Path:
    data = source.read_bytes()
    return _write(tmp, name, data[: int(len(data) * keep)])


def _patched(source: Path, tmp: Path, name: str, offset: int, patch: bytes) -> Path:
    data = bytearray(source.read_bytes())
    data[offset : offset + len(patch)] = patch
    return _write(tmp, name, bytes(data))


def _fragment_offset(source: Path) -> int:
    """File offset of the first compressed fragment's value (after the offset table item)."""
    data = source.read_bytes()
    pixel_tag = data.rindex(b"\xe0\x7f\x10\x00")
    bot_length = struct.unpack("<L", data[pixel_tag + 16 : pixel_tag + 20])[0]
    return pixel_tag + 20 + bot_length + 8


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))


def _png_declaring(width: int, height: int) -> bytes:
    ihdr = struct.pack(">LLBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png_with_bad_idat_crc(tmp: Path) -> Path:
    data = bytearray(make_png(tmp / "src.png", 64, 64).read_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 10] ^= 0xFF
    return _write(tmp, "bad_crc.png", bytes(data))


def _png_with_bad_ihdr_crc(tmp: Path) -> Path:
    data = bytearray(make_png(tmp / "src.png").read_bytes())
    data[29] ^= 0xFF  # first byte of the IHDR CRC
    return _write(tmp, "bad_ihdr.png", bytes(data))


def _jpeg_with_size(tmp: Path, width: int, height: int) -> Path:
    data = bytearray(make_jpeg(tmp / "src.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return _write(tmp, "huge.jpg", bytes(data))


def _header_length_past_eof(tmp: Path) -> Path:
    data = bytearray(MR_SMALL.read_bytes())
    tag = data.index(b"\x10\x00\x10\x00PN")  # (0010,0010) Patient's Name, explicit VR
    data[tag + 6 : tag + 8] = b"\xff\xfe"
    return _write(tmp, "name_too_long.dcm", bytes(data[: tag + 200]))


def _unknown_transfer_syntax(tmp: Path) -> Path:
    data = MR_SMALL.read_bytes()
    uid = b"1.2.840.10008.1.2.1\x00"
    assert uid in data
    return _write(tmp, "unknown_ts.dcm", data.replace(uid, b"1.2.3.4.5.6.7.8.9.10", 1))


def _mpeg2(tmp: Path) -> Path:
    ds = pydicom.dcmread(MR_RLE)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder
    path = tmp / "mpeg2.dcm"
    ds.save_as(path)
    return path


def _corrupt_fragment(source: Path, tmp: Path, name: str, patch: bytes) -> Path:
    return _patched(source, tmp, name, _fragment_offset(source), patch)


def _big_rle(tmp: Path, **changes: object) -> Path:
    return _edited(MR_RLE, tmp, "bomb.dcm", **changes)


def _deflated_bomb(tmp: Path) -> Path:
    """A deflated dataset declaring a tiny image but inflating to far more than it says."""
    arr = np.zeros((8, 8), np.uint8)
    path = make_dicom(tmp / "src.dcm", arr)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    ds.save_as(tmp / "deflated.dcm")
    return tmp / "deflated.dcm"


Case = tuple[str, Callable[[Path], Path], str]

CASES: list[Case] = [
    ("empty", lambda t: _write(t, "empty.dcm", b""), "empty file"),
    ("text", lambda t: _write(t, "notes.dcm", b"patient notes\n" * 20), "unknown format"),
    ("short garbage", lambda t: _write(t, "x.png", b"\x00\x01\x02"), "unknown format"),
    (
        "dicm wrong offset",
        lambda t: _write(t, "off.dcm", b"\0" * 127 + b"DICM" + b"\0" * 64),
        "unknown format",
    ),
    ("preamble only", lambda t: _write(t, "pre.dcm", b"\0" * 128 + b"DICM"), "DICOM"),
    ("broken meta", lambda t: _patched(MR_SMALL, t, "meta.dcm", 132, b"\xff" * 40), "DICOM"),
    (
        "odd garbage",
        lambda t: _write(t, "junk.dcm", b"\0" * 128 + b"DICM" + bytes(range(256)) * 8),
        "DICOM",
    ),
    (
        "cut in header",
        lambda t: _write(t, "cut.dcm", MR_SMALL.read_bytes()[:400]),
        "truncated DICOM",
    ),
    ("length past EOF", _header_length_past_eof, "truncated DICOM: element (0010,0010)"),
    (
        "truncated native",
        lambda t: _truncated(MR_SMALL, t, "scan.dcm", 0.7),
        "truncated DICOM: Pixel Data ends at byte",
    ),
    ("truncated RLE", lambda t: _truncated(MR_RLE, t, "rle.dcm", 0.8), "truncated DICOM"),
    (
        "no pixel data",
        lambda t: _edited(MR_SMALL, t, "nopix.dcm", PixelData=None),
        "without Pixel Data",
    ),
    (
        "pixel data short",
        lambda t: _edited(MR_SMALL, t, "short.dcm", Rows=128),
        "the declared image needs 16384",
    ),
    ("rows zero", lambda t: _edited(MR_SMALL, t, "rows0.dcm", Rows=0), "Rows is 0"),
    (
        "bits allocated 7",
        lambda t: _edited(MR_SMALL, t, "b7.dcm", BitsAllocated=7),
        "BitsAllocated is 7",
    ),
    (
        "samples 5",
        lambda t: _edited(MR_SMALL, t, "s5.dcm", SamplesPerPixel=5),
        "SamplesPerPixel is 5",
    ),
    ("bits stored 17", lambda t: _edited(MR_SMALL, t, "bs.dcm", BitsStored=17), "BitsStored"),
    (
        "rgb with 1 sample",
        lambda t: _edited(MR_SMALL, t, "pi.dcm", PhotometricInterpretation="RGB"),
        "PhotometricInterpretation RGB with SamplesPerPixel 1",
    ),
    (
        "unknown photometric",
        lambda t: _edited(MR_SMALL, t, "foo.dcm", PhotometricInterpretation="FOO"),
        "FOO",
    ),
    ("frames 0", lambda t: _edited(MR_SMALL, t, "f0.dcm", NumberOfFrames=0), "NumberOfFrames"),
    (
        "pixel representation 2",
        lambda t: _edited(MR_SMALL, t, "pr.dcm", PixelRepresentation=2),
        "PixelRepresentation",
    ),
    ("missing rows", lambda t: _edited(MR_SMALL, t, "norows.dcm", Rows=None), "missing Rows"),
    ("unknown transfer syntax", _unknown_transfer_syntax, "unknown transfer syntax"),
    ("no decoder (MPEG2)", _mpeg2, "unsupported transfer syntax"),
    (
        "undecodable RLE frame",
        lambda t: _corrupt_fragment(MR_RLE, t, "badrle.dcm", b"\xff" * 64),
        "undecodable",
    ),
    (
        "undecodable JPEG frame",
        lambda t: _corrupt_fragment(RGB_JPEG, t, "badjpeg.dcm", b"\x00" * 32),
        "undecodable",
    ),
    (
        "fewer fragments than frames",
        lambda t: _edited(MR_RLE, t, "nf.dcm", NumberOfFrames=2),
        "fragments for 2 frames",
    ),
    (
        "bomb: pixels per frame",
        lambda t: _big_rle(t, Rows=65535, Columns=65535),
        "decompression bomb",
    ),
    ("bomb: total bytes", lambda t: _big_rle(t, NumberOfFrames=600_000), "decompression bomb"),
    ("truncated PNG", lambda t: _truncated(make_png(t / "a.png", 64, 64), t, "t.png", 0.6), "PNG"),
    ("PNG signature only", lambda t: _write(t, "sig.png", b"\x89PNG\r\n\x1a\n"), "PNG"),
    ("PNG bad IDAT CRC", _png_with_bad_idat_crc, "PNG"),
    ("PNG bad IHDR CRC", _png_with_bad_ihdr_crc, "bad CRC in IHDR"),
    ("PNG 16-bit RGB", lambda t: make_png(t / "rgb16.png", bits=16, rgb=True), "16-bit RGB"),
    (
        "PNG bomb",
        lambda t: _write(t, "bomb.png", _png_declaring(10_000, 10_000)),
        "decompression bomb",
    ),
    (
        "truncated JPEG",
        lambda t: _truncated(make_jpeg(t / "a.jpg", 64, 64), t, "t.jpg", 0.5),
        "JPEG",
    ),
    ("JPEG garbage", lambda t: _write(t, "g.jpg", b"\xff\xd8\xff\xe0" + b"\x13" * 300), "JPEG"),
    ("JPEG bomb", lambda t: _jpeg_with_size(t, 60_000, 60_000), "decompression bomb"),
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


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_header_problems_are_found_without_decoding(tmp_path):
    """read_metadata alone refuses a bomb and a truncation: nothing needs decoding to know."""
    for path in (
        _big_rle(tmp_path, Rows=65535, Columns=65535),
        _truncated(MR_SMALL, tmp_path, "cut.dcm", 0.5),
    ):
        with pytest.raises(InvalidInput):
            read_metadata(path)


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
    path = _deflated_bomb(tmp_path)
    assert validate(path).transfer_syntax_uid == "1.2.840.10008.1.2.1.99"


def test_deflated_bomb_is_refused(tmp_path, monkeypatch):
    import scanseal.ingest._dicom as dicom

    monkeypatch.setattr(dicom, "MAX_DECODED_BYTES", 64)
    with pytest.raises(InvalidInput, match="decompression bomb: deflated"):
        read_metadata(_deflated_bomb(tmp_path))


def test_jpeg_transfer_syntax_uid_constant():
    assert pydicom.dcmread(RGB_JPEG).file_meta.TransferSyntaxUID == JPEG_BASELINE_UID
    assert RLELossless == pydicom.dcmread(MR_RLE).file_meta.TransferSyntaxUID
