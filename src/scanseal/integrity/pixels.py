"""Pixel digest: SHA-256 of the decoded pixels in a canonical form.

File bytes change whenever a PACS rewrites a header, re-encodes losslessly or drops padding, yet
the image is the same. The pixel digest covers only what is seen, so it survives those changes
and still changes if any single sample changes. The canonical form is specified in
docs/INGEST.md with a test vector:

    b"scanseal/pixels/v1" ‖ rows ‖ columns ‖ frames ‖ samples   (each uint32 big-endian)
    ‖ dtype code (2 ASCII bytes: kind u/i/f, then bytes per sample, e.g. b"u2")
    ‖ frame 0 ‖ frame 1 ‖ …   (C order, samples interleaved, little-endian)

A DICOM object without pixels (SR, KOS, PR, RT plan, encapsulated PDF, …) has a content digest
instead (:func:`content_digest`), in the same place of the manifest and the ledger.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from scanseal.errors import ScanSealError, Unreadable
from scanseal.ingest import IngestedImage, RawPixels, read_image

PIXEL_DIGEST_DOMAIN: Final[bytes] = b"scanseal/pixels/v1"
"""Domain separation: a pixel digest can never collide with another ScanSeal hash input."""
CONTENT_DIGEST_DOMAIN: Final[bytes] = b"scanseal/content/v1"
"""Likewise for the content digest of a DICOM object without pixels."""
_TRAILING_PADDING: Final = 0xFFFCFFFC

_DIMENSIONS = struct.Struct(">LLLL")


def pixel_digest(source: Path | IngestedImage) -> bytes:
    """Return the 32-byte SHA-256 of the canonical decoded pixels of a DICOM, PNG or JPEG file.

    ``source`` is a file, or an image already ingested (sealing passes the one the detector
    screened, so its frame is not decoded again). Memory stays bounded by one frame (or one
    256 KiB read for native little-endian DICOM, whose Pixel Data bytes are hashed directly
    when they provably equal the canonical form).
    """
    image = source if isinstance(source, IngestedImage) else read_image(Path(source))
    if not image.has_pixels:
        return content_digest(image)
    raw = image.raw_pixels()
    if raw is not None:
        return _hash_raw(image, raw)
    return _hash_frames(image)


def content_digest(image: IngestedImage) -> bytes:
    """The digest that stands for the pixel digest of a DICOM object without pixels.

    SHA-256 of ``b"scanseal/content/v1"`` followed by the data set encoded as Explicit VR
    Little Endian without its file meta group (0002), its group length elements (gggg,0000)
    and Data Set Trailing Padding (FFFC,FFFC), at every level of nesting; sequences and items
    of undefined length (docs/INGEST.md). So, like the pixel digest, it survives a rewritten
    meta header, dropped group lengths and padding, a change between the uncompressed transfer
    syntaxes, and changes with any element value.
    """
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    try:
        write_dataset(buffer, _canonical_dataset(image.dataset()))
    except ScanSealError:
        raise
    except Exception as error:  # pydicom cannot re-encode an element (an unknown VR, a bad value)
        detail = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise Unreadable(f"{image.path.name}: cannot encode its data set ({detail})") from error
    return hashlib.sha256(CONTENT_DIGEST_DOMAIN + buffer.getvalue()).digest()


def _canonical_dataset(dataset: Dataset) -> Dataset:
    """A copy without file meta, group lengths and trailing padding, items likewise."""
    kept = Dataset()
    for element in dataset:
        tag = element.tag
        if tag.group == 0x0002 or tag.element == 0x0000 or tag == _TRAILING_PADDING:
            continue
        if element.VR == "SQ":
            element = DataElement(
                tag, "SQ", [_canonical_dataset(item) for item in element.value or []]
            )
        kept.add(element)
    return kept


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


def _image_header(image: IngestedImage, dtype: Any) -> bytes:
    meta = image.metadata
    return canonical_header(meta.rows, meta.columns, meta.frames, meta.samples_per_pixel, dtype)


def _hash_frames(image: IngestedImage) -> bytes:
    """Decode frame by frame, hashing the header once the first frame shows the dtype."""
    digest = hashlib.sha256()
    first = True
    for frame in image.frames():
        if first:
            digest.update(_image_header(image, frame.dtype))
            first = False
        digest.update(canonical_frame_bytes(frame))
    return digest.digest()


def _hash_raw(image: IngestedImage, raw: RawPixels) -> bytes:
    """Hash the header then the stored Pixel Data bytes, in bounded chunks.

    With a mask, each chunk's samples have their unused high bits cleared first, exactly as
    decoding does; chunks are whole samples because the chunk size is a multiple of 8.
    """
    digest = hashlib.sha256(_image_header(image, raw.dtype))
    for chunk in raw.chunks():
        if raw.mask is None:
            digest.update(chunk)
        else:
            digest.update(
                (np.frombuffer(chunk, dtype=raw.dtype) & raw.mask).astype(raw.dtype).tobytes()
            )
    return digest.digest()
