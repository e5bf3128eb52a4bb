"""The one binary framing the gateway speaks: a bundle of JSON metadata and opaque bytes.

``SSBUNDLE1\\n ‖ u32(len(meta)) ‖ meta ‖ payload``, where ``meta`` is canonical JSON (sorted
keys, no whitespace) and ``payload`` is an envelope. Uploads send ``{"manifest": …}`` with the
envelope; fetches answer ``{"manifest": …, "grant": …, "record": {…}}`` with the envelope. The
reader is strict (exact magic, bounded and canonical metadata), so a change anywhere in the
framing fails here, and a change inside the fields fails the checks of what they carry.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final

from scanseal._json import canonical_json, parse_object
from scanseal.errors import IntegrityError

MAGIC: Final = b"SSBUNDLE1\n"
MEDIA_TYPE: Final = "application/vnd.scanseal.bundle"
MAX_META: Final = 1 << 20
_LENGTH: Final = struct.Struct(">I")


def pack(meta: Mapping[str, Any], payload: bytes) -> bytes:
    encoded = canonical_json(meta)
    return b"".join((MAGIC, _LENGTH.pack(len(encoded)), encoded, payload))  # one copy of payload


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a bundle; IntegrityError for anything but exactly what :func:`pack` writes."""
    head = len(MAGIC) + _LENGTH.size
    if len(data) < head or not data.startswith(MAGIC):
        raise IntegrityError("not a ScanSeal bundle (bad magic)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if length > MAX_META or head + length > len(data):
        raise IntegrityError("bundle metadata length is out of range")
    raw = data[head : head + length]
    try:
        meta = parse_object(raw, "bundle metadata")
    except Exception as error:  # InvalidInput from the strict parser: the bytes were altered
        raise IntegrityError(f"bundle metadata is not valid JSON: {error}") from None
    if canonical_json(meta) != raw:
        raise IntegrityError("bundle metadata is not canonical JSON")
    return meta, data[head + length :]


def text_field(meta: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    """A string member of the metadata (or None when ``optional`` and null)."""
    value = meta.get(key)
    if value is None and optional and key in meta:
        return None
    if not isinstance(value, str):
        raise IntegrityError(f"bundle field {key!r} is missing or not a string")
    return value


def require_keys(meta: Mapping[str, Any], *keys: str) -> None:
    if sorted(meta) != sorted(keys):
        raise IntegrityError(f"bundle fields must be exactly {', '.join(sorted(keys))}")


def unpack_json(body: bytes) -> dict[str, Any]:
    """A small JSON request body (revoke); InvalidInput when malformed."""
    return parse_object(body, "request body")
