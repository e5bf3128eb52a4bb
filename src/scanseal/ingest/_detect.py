"""Format detection by magic bytes; file extensions are never trusted."""

from __future__ import annotations

from pathlib import Path

from scanseal.ingest._common import Source, fail
from scanseal.ingest.metadata import ImageFormat

_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


def detect_format(path: Path) -> ImageFormat:
    """Return the format from the file's first bytes, or raise InvalidInput.

    DICOM means the Part 10 file format ("DICM" after a 128-byte preamble): bare datasets
    without the preamble carry no transfer syntax and are rejected.
    """
    return format_of(Source(path))


def format_of(source: Source) -> ImageFormat:
    """:func:`detect_format` of a file or of bytes in memory."""
    path = source.path
    if source.size() == 0:
        fail(path, "empty file")
    try:
        with source.open() as f:
            head = f.read(_DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC))
    except OSError as exc:
        fail(path, f"cannot read: {exc.strerror or exc}")
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head[_DICOM_MAGIC_OFFSET:] == _DICOM_MAGIC:
        return "dicom"
    if len(head) < _DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC):
        fail(path, f"unknown format: only {len(head)} bytes, no DICOM, PNG or JPEG signature")
    fail(path, "unknown format: no DICOM (DICM at byte 128), PNG or JPEG signature")
