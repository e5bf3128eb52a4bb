"""The public ingest functions: dispatch on the detected format to the DICOM or raster reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from scanseal.ingest import _dicom, _raster
from scanseal.ingest._detect import detect_format
from scanseal.ingest.metadata import ImageMetadata

_RAW_IDENTICAL_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)


def read_metadata(path: Path) -> ImageMetadata:
    """Validate the header (format, attributes, limits, extents) and return the metadata.

    No pixel is decoded, so this is cheap enough to run on every file a modality pushes.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "dicom":
        return _dicom.read_header(path).metadata
    return _raster.read_header(path, fmt)


def open_frames(path: Path) -> tuple[ImageMetadata, Iterator[np.ndarray[Any, Any]]]:
    """Validate the header now, and return the metadata with a lazy frame iterator."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "dicom":
        header = _dicom.read_header(path)
        return header.metadata, _dicom.iter_frames(path, header)
    meta, array = _raster.decode(path, fmt)
    return meta, iter((array,))


def iter_frames(path: Path) -> Iterator[np.ndarray[Any, Any]]:
    """Yield decoded frames one at a time, samples as stored (no colour-space conversion).

    Shape is (rows, columns) or (rows, columns, samples). Header problems raise at the call,
    decoding problems while iterating; both as InvalidInput.
    """
    return open_frames(path)[1]


def validate(path: Path) -> ImageMetadata:
    """Validate the header and decode every frame; return the metadata if all is well."""
    meta, frames = open_frames(path)
    for _ in frames:
        pass
    return meta


class RawSpan(NamedTuple):
    """A byte range of the file that equals the canonical little-endian decoded pixels."""

    metadata: ImageMetadata
    dtype: np.dtype[Any]
    offset: int
    length: int
    mask: int | None  # unsigned samples with BitsStored < BitsAllocated: AND with this first


def raw_canonical_span(path: Path) -> RawSpan | None:
    """Return where the raw Pixel Data bytes are provably the decoded pixels, else None.

    True for native little-endian data whose samples decode unchanged: whole-byte samples,
    interleaved colour, no 4:2:2 subsampling, no sign extension to apply (unsigned samples
    only need the unused high bits cleared, see ``mask``). The pixel digest then hashes file
    bytes directly instead of decoding (much faster).
    """
    path = Path(path)
    if detect_format(path) != "dicom":
        return None
    header = _dicom.read_header(path)
    meta, layout = header.metadata, header.layout
    signed = layout.pixel_representation == 1
    if (
        layout.value_offset is None
        or header.transfer_syntax not in _RAW_IDENTICAL_SYNTAXES
        or meta.bits_allocated not in (8, 16, 32, 64)
        or (meta.samples_per_pixel > 1 and layout.planar_configuration != 0)
        or layout.photometric == "YBR_FULL_422"
        or (signed and meta.bits_stored != meta.bits_allocated)
    ):
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{meta.bits_allocated // 8}")
    mask = None if meta.bits_stored == meta.bits_allocated else (1 << meta.bits_stored) - 1
    return RawSpan(meta, dtype, layout.value_offset, layout.expected_native_bytes, mask)
