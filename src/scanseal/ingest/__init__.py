"""Ingest: recognise, validate, describe and decode medical images (DICOM, PNG, JPEG).

Everything a user can feed ScanSeal passes through here first. Formats are recognised by their
bytes, never by their names; anything malformed, truncated, inconsistent or oversized is refused
with :class:`scanseal.errors.InvalidInput` and a one-line reason naming the file. Limits are in
:mod:`scanseal.ingest.limits`; the rules are written down in docs/INGEST.md.

:func:`read_image` ingests a file once: an :class:`IngestedImage` holds the validated header
and decodes frames on demand, and is what sealing hands to the pixel digest and the detector.
:func:`read_image_bytes` does the same for a DICOM file held in memory (a received instance).
The path-taking functions (``read_metadata``, ``iter_frames``, ``validate``, ``preprocess``,
``display_frame``) each ingest the file they are given.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from scanseal.ingest._detect import detect_format
from scanseal.ingest.metadata import ImageFormat, ImageMetadata

if TYPE_CHECKING:
    from scanseal.ingest._api import iter_frames, read_metadata, validate
    from scanseal.ingest._display import display_frame
    from scanseal.ingest._image import IngestedImage, RawPixels, read_image, read_image_bytes
    from scanseal.ingest._preprocess import preprocess, preprocess_views

_DECODING: Final = {
    "iter_frames": "_api", "read_metadata": "_api", "validate": "_api",
    "display_frame": "_display", "IngestedImage": "_image", "RawPixels": "_image",
    "read_image": "_image", "read_image_bytes": "_image", "preprocess": "_preprocess",
    "preprocess_views": "_preprocess",
}  # fmt: skip
"""Names loaded on first use, with pydicom, numpy and Pillow: what reads a record's metadata
back (``ImageMetadata``, a fetch) needs none of them."""


def __getattr__(name: str) -> Any:
    if name in _DECODING:
        return getattr(importlib.import_module(f"scanseal.ingest.{_DECODING[name]}"), name)
    raise AttributeError(f"module 'scanseal.ingest' has no attribute {name!r}")


__all__ = [
    "ImageFormat",
    "ImageMetadata",
    "IngestedImage",
    "RawPixels",
    "detect_format",
    "display_frame",
    "iter_frames",
    "preprocess",
    "preprocess_views",
    "read_image",
    "read_image_bytes",
    "read_metadata",
    "validate",
]
