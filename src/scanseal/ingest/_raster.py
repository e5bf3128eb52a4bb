"""PNG and JPEG through Pillow: header checks, limits, and decoding to gray or RGB arrays.

Every accepted image becomes 8- or 16-bit gray or 8-bit RGB, so downstream code (the pixel
digest, the detector) sees the same few shapes as for DICOM. Alpha and palettes are resolved
here; see docs/INGEST.md for the exact conversions.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scanseal.ingest._common import fail, file_size, mapped_errors
from scanseal.ingest.limits import MAX_FRAME_PIXELS, MAX_RASTER_FILE_BYTES
from scanseal.ingest.metadata import ImageFormat, ImageMetadata

# Pillow mode -> (mode to convert to, samples per pixel, bits allocated)
_MODES: dict[str, tuple[str, int, int]] = {
    "1": ("L", 1, 8),
    "L": ("L", 1, 8),
    "LA": ("L", 1, 8),
    "La": ("L", 1, 8),
    "I;16": ("I;16", 1, 16),
    "I;16B": ("I;16", 1, 16),
    "I;16L": ("I;16", 1, 16),
    "I": ("I", 1, 32),
    "P": ("RGB", 3, 8),
    "PA": ("RGB", 3, 8),
    "RGB": ("RGB", 3, 8),
    "RGBA": ("RGB", 3, 8),
    "RGBa": ("RGB", 3, 8),
    "RGBX": ("RGB", 3, 8),
    "YCbCr": ("RGB", 3, 8),
}
_PNG_IHDR = struct.Struct(">L4sLLBBBBB")
_PNG_COLOUR_16_UNSUPPORTED = {2: "RGB", 4: "gray+alpha", 6: "RGBA"}
_EXIF_IFD = 0x8769
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_OFFSET_TIME_ORIGINAL = 0x9011
_UTC_OFFSET = re.compile(r"[+-]\d\d:\d\d")


def read_header(path: Path, fmt: ImageFormat) -> ImageMetadata:
    """Check size, signature details and limits from the header; decode no pixels."""
    size = file_size(path)
    if size > MAX_RASTER_FILE_BYTES:
        fail(
            path, f"{fmt.upper()} file of {size} bytes exceeds the limit of {MAX_RASTER_FILE_BYTES}"
        )
    if fmt == "png":
        _check_png_ihdr(path)
    with _pillow_errors(path, fmt), Image.open(path, formats=[fmt.upper()]) as im:
        return _metadata(path, fmt, im)


def decode_pixels(path: Path, fmt: ImageFormat) -> np.ndarray[Any, Any]:
    """The converted pixel array of a file whose header :func:`read_header` accepted.

    PNG chunk CRCs are checked first (``verify``), which decoding alone skips for image data.
    """
    with _pillow_errors(path, fmt):
        if fmt == "png":
            with Image.open(path, formats=["PNG"]) as im:
                im.verify()  # checks every chunk's CRC, which load() skips for image data
        with Image.open(path, formats=[fmt.upper()]) as im:
            im.load()
            target = _MODES[im.mode][0]
            converted = im if im.mode == target else im.convert(target)
            array = np.array(converted)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array


@contextmanager
def _pillow_errors(path: Path, fmt: ImageFormat) -> Iterator[None]:
    """Map Pillow failures; a DecompressionBombError gets its own clear wording."""
    with mapped_errors(path, f"malformed {fmt.upper()}"):
        try:
            yield
        except Image.DecompressionBombError as exc:
            fail(path, f"decompression bomb: {exc}")


def _check_png_ihdr(path: Path) -> None:
    """Reject PNGs Pillow would silently truncate: 16-bit colour becomes 8-bit in Pillow."""
    with path.open("rb") as f:
        f.seek(8)
        chunk = f.read(_PNG_IHDR.size + 4)
    if len(chunk) < _PNG_IHDR.size + 4:
        fail(path, "truncated PNG: no complete IHDR chunk")
    length, kind, _, _, depth, colour, _, _, _ = _PNG_IHDR.unpack(chunk[: _PNG_IHDR.size])
    if kind != b"IHDR" or length != 13:
        fail(path, "malformed PNG: first chunk is not a 13-byte IHDR")
    (crc,) = struct.unpack(">L", chunk[_PNG_IHDR.size :])
    if zlib.crc32(chunk[4 : _PNG_IHDR.size]) != crc:
        fail(path, "corrupt PNG: bad CRC in IHDR chunk")
    if depth == 16 and colour in _PNG_COLOUR_16_UNSUPPORTED:
        fail(
            path,
            f"unsupported PNG: 16-bit {_PNG_COLOUR_16_UNSUPPORTED[colour]} would lose "
            "its low byte in decoding; convert to 16-bit gray or 8-bit colour",
        )


def _metadata(path: Path, fmt: ImageFormat, im: Image.Image) -> ImageMetadata:
    """Describe the image as it will be decoded (after the documented mode conversion)."""
    if getattr(im, "n_frames", 1) != 1 and fmt == "png":
        fail(path, "unsupported PNG: animated PNG (APNG) with several frames")
    if im.mode not in _MODES:
        fail(path, f"unsupported {fmt.upper()} pixel mode {im.mode}")
    width, height = im.size
    if width < 1 or height < 1:
        fail(path, f"malformed {fmt.upper()}: image is {width}×{height}")
    if width * height > MAX_FRAME_PIXELS:
        fail(
            path,
            f"decompression bomb: {width}×{height} = {width * height} pixels exceeds "
            f"the limit of {MAX_FRAME_PIXELS}",
        )
    _, samples, bits = _MODES[im.mode]
    return ImageMetadata(
        format=fmt,
        patient_id=None,
        patient_name=None,
        modality=None,
        study_instance_uid=None,
        series_instance_uid=None,
        sop_instance_uid=None,
        study_datetime=None,
        acquisition_datetime=_exif_datetime(im) if fmt == "jpeg" else None,
        rows=height,
        columns=width,
        frames=1,
        samples_per_pixel=samples,
        bits_allocated=bits,
        bits_stored=bits,
        transfer_syntax_uid=None,
    )


def _exif_datetime(im: Image.Image) -> str | None:
    """EXIF DateTimeOriginal (plus OffsetTimeOriginal) as ISO 8601, if present and valid."""
    try:
        ifd = im.getexif().get_ifd(_EXIF_IFD)
        stamp = datetime.strptime(
            str(ifd.get(_EXIF_DATETIME_ORIGINAL, "")).strip(), "%Y:%m:%d %H:%M:%S"
        )
    except Exception:  # EXIF is optional and often malformed
        return None
    offset = str(ifd.get(_EXIF_OFFSET_TIME_ORIGINAL, "")).strip()
    suffix = offset if _UTC_OFFSET.fullmatch(offset) else ""
    return stamp.isoformat() + suffix
