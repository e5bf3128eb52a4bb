"""The metadata ScanSeal keeps for every image, and its canonical byte form.

The canonical bytes are hashed into H2 and bound into the manifest, so they must be identical on
every machine and every Python version: they are specified in docs/INGEST.md with a test vector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

from scanseal.errors import InvalidInput

ImageFormat = Literal["dicom", "png", "jpeg"]

_FORMATS: frozenset[str] = frozenset(get_args(ImageFormat))
_INT_FIELDS = frozenset(
    {"rows", "columns", "frames", "samples_per_pixel", "bits_allocated", "bits_stored"}
)


@dataclass(frozen=True)
class ImageMetadata:
    """What an image says about itself, read from its header without decoding pixels.

    Text fields are ``None`` when the file does not carry them (always for PNG and JPEG except
    ``acquisition_datetime`` from EXIF). Date-times are ISO 8601 when they can be derived and
    ``None`` otherwise, so consumers never have to parse DICOM DA/TM/DT strings.
    """

    format: ImageFormat
    patient_id: str | None
    patient_name: str | None
    modality: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_instance_uid: str | None
    study_datetime: str | None
    acquisition_datetime: str | None
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    transfer_syntax_uid: str | None

    def to_dict(self) -> dict[str, str | int | None]:
        """Return every field by name; the inverse of :meth:`from_dict`."""
        return asdict(self)

    def canonical_bytes(self) -> bytes:
        """Return canonical JSON: sorted keys, no whitespace, UTF-8, nulls kept.

        With only strings, small integers and nulls this is also RFC 8785 (JCS) output, so
        other languages can reproduce it with a JCS library.
        """
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> ImageMetadata:
        """Rebuild metadata from :meth:`to_dict` output, rejecting missing, extra or mistyped keys.

        Strict because the dict usually comes from a manifest received over the network.
        """
        names = [f.name for f in fields(cls)]
        missing = sorted(set(names) - set(d))
        extra = sorted(set(d) - set(names))
        if missing or extra:
            raise InvalidInput(f"image metadata: missing keys {missing}, unexpected keys {extra}")
        values = {name: _checked_value(name, d[name]) for name in names}
        return cls(**values)  # type: ignore[arg-type]


def _checked_value(name: str, value: object) -> str | int | None:
    """Check one field's type (and the format's value) so a bad manifest fails loudly."""
    if name in _INT_FIELDS:
        if type(value) is not int or value < 0:
            raise InvalidInput(f"image metadata: {name} must be a non-negative integer")
        return value
    if name == "format":
        if value not in _FORMATS:
            raise InvalidInput(f"image metadata: format must be one of {sorted(_FORMATS)}")
        return str(value)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"image metadata: {name} must be a string or null")
    return value
