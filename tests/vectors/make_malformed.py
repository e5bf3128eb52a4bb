"""Regenerate tests/vectors/malformed/: the committed malformed inputs of docs/INGEST.md.

Run by hand from the repository root (``python tests/vectors/make_malformed.py``) and commit
the output. Each file is derived from a real one (pydicom's test files, or a small generated PNG
or JPEG) by truncation, byte corruption or an attribute edit, or written from scratch; every
public ingest entry point must refuse it with ``InvalidInput`` and one line naming the file.

The bytes depend on the versions of pydicom (its test files and writer), Pillow (PNG and JPEG
encoders) and zlib, which the README records: tests/ingest/test_malformed.py regenerates the
files and compares them byte for byte when the versions match.
"""

from __future__ import annotations

import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
import pydicom
from pydicom.data import get_testdata_file

if __name__ == "__main__":  # run as a script: make tests/ importable like pytest does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import make_dicom, make_jpeg, make_png

DIRECTORY = Path(__file__).with_name("malformed")
README = DIRECTORY / "README.md"
MR_SMALL = Path(get_testdata_file("MR_small.dcm"))  # native, 64×64, 16-bit
MR_RLE = Path(get_testdata_file("MR_small_RLE.dcm"))
RGB_JPEG = Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))


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


def deflated_bomb(tmp: Path) -> Path:
    """A deflated dataset declaring a tiny image (refused only under a lowered limit)."""
    arr = np.zeros((8, 8), np.uint8)
    path = make_dicom(tmp / "src.dcm", arr)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    ds.save_as(tmp / "deflated.dcm")
    return tmp / "deflated.dcm"


@dataclass(frozen=True)
class Case:
    """One committed malformed file: how it is made, why it is wrong, what the refusal says."""

    name: str
    build: Callable[[Path], Path]
    expected: str
    why: str
    suffix: str

    @property
    def file(self) -> str:
        """The committed file name: the case name as a slug, with the format's usual suffix."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") + self.suffix

    @property
    def path(self) -> Path:
        return DIRECTORY / self.file


def _c(
    name: str, build: Callable[[Path], Path], expected: str, why: str, suffix: str = ".dcm"
) -> Case:
    return Case(name, build, expected, why, suffix)


CASES: list[Case] = [
    _c("empty", lambda t: _write(t, "x", b""), "empty file", "zero bytes"),
    _c("text", lambda t: _write(t, "x", b"patient notes\n" * 20), "unknown format",
       "plain text with a .dcm name"),
    _c("short garbage", lambda t: _write(t, "x", b"\x00\x01\x02"), "unknown format",
       "three bytes, no signature", ".png"),
    _c("dicm wrong offset", lambda t: _write(t, "x", b"\0" * 127 + b"DICM" + b"\0" * 64),
       "unknown format", "DICM magic at byte 127 instead of 128"),
    _c("preamble only", lambda t: _write(t, "x", b"\0" * 128 + b"DICM"), "DICOM",
       "preamble and DICM magic, then end of file"),
    _c("broken meta", lambda t: _patched(MR_SMALL, t, "x", 132, b"\xff" * 40), "DICOM",
       "MR_small.dcm with its file meta group overwritten by 0xFF bytes"),
    _c("odd garbage", lambda t: _write(t, "x", b"\0" * 128 + b"DICM" + bytes(range(256)) * 8),
       "DICOM", "DICM magic followed by a byte ramp that parses as nonsense elements"),
    _c("cut in header", lambda t: _write(t, "x", MR_SMALL.read_bytes()[:400]),
       "truncated DICOM", "MR_small.dcm cut after 400 bytes, inside the dataset header"),
    _c("length past EOF", _header_length_past_eof, "truncated DICOM: element (0010,0010)",
       "Patient's Name declares 65279 bytes; the file ends 200 bytes later"),
    _c("truncated native", lambda t: _truncated(MR_SMALL, t, "x", 0.7),
       "truncated DICOM: Pixel Data ends at byte", "MR_small.dcm cut to 70 %, inside Pixel Data"),
    _c("truncated RLE", lambda t: _truncated(MR_RLE, t, "x", 0.8), "truncated DICOM",
       "MR_small_RLE.dcm cut to 80 %, inside the encapsulated fragments"),
    _c("no pixel data", lambda t: _edited(MR_SMALL, t, "x", PixelData=None),
       "without Pixel Data", "MR_small.dcm with Pixel Data removed"),
    _c("pixel data short", lambda t: _edited(MR_SMALL, t, "x", Rows=128),
       "the declared image needs 16384", "Rows doubled: Pixel Data holds half the image"),
    _c("rows zero", lambda t: _edited(MR_SMALL, t, "x", Rows=0), "Rows is 0", "Rows is 0"),
    _c("bits allocated 7", lambda t: _edited(MR_SMALL, t, "x", BitsAllocated=7),
       "BitsAllocated is 7", "BitsAllocated 7 (not 1 or a multiple of 8)"),
    _c("samples 5", lambda t: _edited(MR_SMALL, t, "x", SamplesPerPixel=5),
       "SamplesPerPixel is 5", "SamplesPerPixel 5 (only 1 or 3 exist)"),
    _c("bits stored 17", lambda t: _edited(MR_SMALL, t, "x", BitsStored=17), "BitsStored",
       "BitsStored 17 exceeds BitsAllocated 16"),
    _c("rgb with 1 sample",
       lambda t: _edited(MR_SMALL, t, "x", PhotometricInterpretation="RGB"),
       "PhotometricInterpretation RGB with SamplesPerPixel 1",
       "PhotometricInterpretation RGB on a one-sample image"),
    _c("unknown photometric",
       lambda t: _edited(MR_SMALL, t, "x", PhotometricInterpretation="FOO"), "FOO",
       "PhotometricInterpretation FOO"),
    _c("frames 0", lambda t: _edited(MR_SMALL, t, "x", NumberOfFrames=0), "NumberOfFrames",
       "NumberOfFrames 0"),
    _c("pixel representation 2", lambda t: _edited(MR_SMALL, t, "x", PixelRepresentation=2),
       "PixelRepresentation", "PixelRepresentation 2 (only 0 or 1 exist)"),
    _c("missing rows", lambda t: _edited(MR_SMALL, t, "x", Rows=None), "missing Rows",
       "Rows removed"),
    _c("unknown transfer syntax", _unknown_transfer_syntax, "unknown transfer syntax",
       "Transfer Syntax UID 1.2.3.4.5.6.7.8.9.10"),
    _c("no decoder MPEG2", _mpeg2, "unsupported transfer syntax",
       "MR_small_RLE.dcm relabelled MPEG2 video, which nothing here decodes"),
    _c("undecodable RLE frame",
       lambda t: _corrupt_fragment(MR_RLE, t, "x", b"\xff" * 64), "undecodable",
       "the first RLE fragment's header overwritten by 0xFF bytes"),
    _c("undecodable JPEG frame",
       lambda t: _corrupt_fragment(RGB_JPEG, t, "x", b"\x00" * 32), "undecodable",
       "the start of the JPEG codestream in SC_rgb_jpeg_dcmtk.dcm zeroed"),
    _c("fewer fragments than frames", lambda t: _edited(MR_RLE, t, "x", NumberOfFrames=2),
       "fragments for 2 frames", "NumberOfFrames 2 with one RLE fragment"),
    _c("bomb pixels per frame", lambda t: _big_rle(t, Rows=65535, Columns=65535),
       "decompression bomb", "a few KB of RLE declaring a 65535 × 65535 frame"),
    _c("bomb total bytes", lambda t: _big_rle(t, NumberOfFrames=600_000), "decompression bomb",
       "a few KB of RLE declaring 600 000 frames"),
    _c("truncated PNG", lambda t: _truncated(make_png(t / "a.png", 64, 64), t, "x", 0.6), "PNG",
       "a 64 × 64 PNG cut to 60 %", ".png"),
    _c("PNG signature only", lambda t: _write(t, "x", b"\x89PNG\r\n\x1a\n"), "PNG",
       "the 8-byte PNG signature and nothing else", ".png"),
    _c("PNG bad IDAT CRC", _png_with_bad_idat_crc, "PNG", "one IDAT byte flipped: CRC mismatch",
       ".png"),
    _c("PNG bad IHDR CRC", _png_with_bad_ihdr_crc, "bad CRC in IHDR", "the IHDR CRC flipped",
       ".png"),
    _c("PNG 16-bit RGB", lambda t: make_png(t / "x", bits=16, rgb=True), "16-bit RGB",
       "a well-formed 16-bit RGB PNG, refused: Pillow would drop its low bytes", ".png"),
    _c("PNG bomb", lambda t: _write(t, "x", _png_declaring(10_000, 10_000)),
       "decompression bomb", "a 10 000 × 10 000 IHDR over a 64-byte IDAT", ".png"),
    _c("truncated JPEG", lambda t: _truncated(make_jpeg(t / "a.jpg", 64, 64), t, "x", 0.5),
       "JPEG", "a 64 × 64 JPEG cut in half", ".jpg"),
    _c("JPEG garbage", lambda t: _write(t, "x", b"\xff\xd8\xff\xe0" + b"\x13" * 300), "JPEG",
       "SOI and an APP0 marker, then filler bytes", ".jpg"),
    _c("JPEG bomb", lambda t: _jpeg_with_size(t, 60_000, 60_000), "decompression bomb",
       "a 48 × 64 JPEG whose SOF0 declares 60 000 × 60 000", ".jpg"),
]  # fmt: skip


def toolchain() -> str:
    """The library versions the bytes depend on, as recorded in the README."""
    return f"pydicom {pydicom.__version__}, Pillow {PIL.__version__}, zlib {zlib.ZLIB_VERSION}"


def render_readme() -> str:
    lines = [
        "# Malformed inputs",
        "",
        "Every file here must be refused by ScanSeal's ingest (`validate`, `pixel_digest`,",
        "`preprocess`, and so `scanseal seal`) with `InvalidInput` and one line naming the file.",
        "Generated by `python tests/vectors/make_malformed.py`; do not edit by hand.",
        "",
        f"Generated with: {toolchain()}",
        "",
        "| File | Why it is malformed | The refusal contains |",
        "|---|---|---|",
    ]
    lines += [f"| `{c.file}` | {c.why} | `{c.expected}` |" for c in CASES]
    return "\n".join(lines) + "\n"


def generate(out: Path) -> list[Path]:
    """Write every case's file and the README into ``out``; each builder gets its own scratch."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as scratch:
            data = case.build(Path(scratch)).read_bytes()
        (out / case.file).write_bytes(data)
        written.append(out / case.file)
    (out / README.name).write_text(render_readme())
    return written


if __name__ == "__main__":
    for path in generate(DIRECTORY):
        print(f"{path.stat().st_size:7d}  {path.name}")
