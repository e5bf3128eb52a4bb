"""Pixel digest: SHA-256 of the decoded pixels in a canonical form.

File bytes change whenever a PACS rewrites a header, re-encodes losslessly or drops padding, yet
the image is the same. The pixel digest covers only what is seen, so it survives those changes
and still changes if any single sample changes. The canonical form is specified in
docs/INGEST.md with a test vector:

    b"scanseal/pixels/v1" ‖ rows ‖ columns ‖ frames ‖ samples   (each uint32 big-endian)
    ‖ dtype code (2 ASCII bytes: kind u/i/f, then bytes per sample, e.g. b"u2")
    ‖ frame 0 ‖ frame 1 ‖ …   (C order, samples interleaved, little-endian)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from scanseal.ingest._api import open_frames, raw_canonical_span
from scanseal.ingest._common import fail, mapped_errors

PIXEL_DIGEST_DOMAIN: Final[bytes] = b"scanseal/pixels/v1"
"""Domain separation: a pixel digest can never collide with another ScanSeal hash input."""

_DIMENSIONS = struct.Struct(">LLLL")
_READ_CHUNK = 1 << 18


def pixel_digest(path: Path) -> bytes:
    """Return the 32-byte SHA-256 of the canonical decoded pixels of a DICOM, PNG or JPEG file.

    Memory stays bounded by one frame (or one 256 KiB read for native little-endian DICOM, whose
    Pixel Data bytes are hashed directly when they provably equal the canonical form).
    """
    path = Path(path)
    span = raw_canonical_span(path)
    if span is not None:
        meta = span.metadata
        header = canonical_header(
            meta.rows, meta.columns, meta.frames, meta.samples_per_pixel, span.dtype
        )
        return _hash_span(path, header, span.offset, span.length, span.dtype, span.mask)
    return _hash_frames(path)


def canonical_header(rows: int, columns: int, frames: int, samples: int, dtype: Any) -> bytes:
    """Return the fixed-width header that precedes the pixels in the canonical form."""
    kind = np.dtype(dtype)
    if kind.kind not in "uif" or kind.itemsize > 9:
        raise ValueError(f"no canonical code for dtype {kind}")
    code = f"{kind.kind}{kind.itemsize}".encode("ascii")
    return PIXEL_DIGEST_DOMAIN + _DIMENSIONS.pack(rows, columns, frames, samples) + code


def canonical_frame_bytes(frame: np.ndarray[Any, Any]) -> bytes:
    """Return one frame's samples in C order, little-endian."""
    little = frame.dtype.newbyteorder("<")
    return np.ascontiguousarray(frame, dtype=little).tobytes()


def _hash_frames(path: Path) -> bytes:
    """Decode frame by frame, hashing the header once the first frame shows the dtype."""
    meta, frames = open_frames(path)
    digest = hashlib.sha256()
    first = True
    for frame in frames:
        if first:
            digest.update(
                canonical_header(
                    meta.rows, meta.columns, meta.frames, meta.samples_per_pixel, frame.dtype
                )
            )
            first = False
        digest.update(canonical_frame_bytes(frame))
    return digest.digest()


def _hash_span(
    path: Path, header: bytes, offset: int, length: int, dtype: np.dtype[Any], mask: int | None
) -> bytes:
    """Hash the header then exactly `length` file bytes from `offset`, in bounded chunks.

    With a mask, each chunk's samples have their unused high bits cleared first, exactly as
    decoding does; chunks are whole samples because the chunk size is a multiple of 8.
    """
    digest = hashlib.sha256(header)
    for chunk in _read_span(path, offset, length):
        if mask is None:
            digest.update(chunk)
        else:
            digest.update((np.frombuffer(chunk, dtype=dtype) & mask).astype(dtype).tobytes())
    return digest.digest()


def _read_span(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """Yield the bytes of a file range; a file shrinking under us is reported, not hashed."""
    with mapped_errors(path, "cannot read Pixel Data"), path.open("rb") as f:
        f.seek(offset)
        remaining = length
        while remaining:
            chunk = f.read(min(remaining, _READ_CHUNK))
            if not chunk:
                fail(path, f"truncated DICOM: Pixel Data ends early, {remaining} bytes missing")
            remaining -= len(chunk)
            yield chunk
