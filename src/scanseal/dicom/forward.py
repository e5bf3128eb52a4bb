"""Forwarding opened instances into a PACS with C-STORE (``scanseal fetch --to-pacs``).

Each file is sent in its own transfer syntax (the bytes the modality encoded, which the sealed
record carried unchanged), so what arrives has the original's pixel digest and element values.
A destination that refuses the association, a context or an instance is an error naming the
DICOM status: nothing is reported forwarded that the PACS did not accept. A destination that is
down (no association: refused, nothing listening, no answer in time; or no answer to a C-STORE)
raises :class:`DestinationUnavailable`, so that the agent can leave it alone for a while instead of
trying it again for every instance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pynetdicom import AE

from scanseal.errors import InvalidInput, StorageUnavailable

_DESTINATION = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")


class DestinationUnavailable(StorageUnavailable):
    """The PACS itself did not answer (exit 5, as any StorageUnavailable): not one instance's
    fault, so the next instance would meet the same."""


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``AET@HOST:PORT``, e.g. ``ORTHANC@127.0.0.1:4242``."""
        match = _DESTINATION.match(text.strip())
        if match is None or not 0 < int(match["port"]) < 65536:
            raise InvalidInput(f"--to-pacs wants AET@HOST:PORT, not {text!r}")
        return cls(match["aet"], match["host"], int(match["port"]))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def forward(paths: Sequence[Path], destination: Destination, calling_ae: str = "SCANSEAL") -> int:
    """C-STORE ``paths`` on one association; returns how many the PACS accepted (all, or it
    raises StorageUnavailable)."""
    if not paths:
        return 0
    ae = AE(ae_title=calling_ae)
    headers = [_header(path) for path in paths]
    for sop_class, syntax in sorted(set(headers)):
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        raise DestinationUnavailable(
            f"PACS {destination} refused or did not answer the association"
        )
    try:
        for path in paths:
            _store_one(assoc, path, destination)
    finally:
        if assoc.is_established:
            assoc.release()
    return len(paths)


def _store_one(assoc: object, path: Path, destination: Destination) -> None:
    try:
        status = assoc.send_c_store(path)  # type: ignore[attr-defined]
    except (ValueError, RuntimeError) as error:  # no accepted context for this syntax
        raise StorageUnavailable(f"PACS {destination} cannot take {path.name}: {error}") from None
    code = getattr(status, "Status", None)
    if code is None:
        raise DestinationUnavailable(f"PACS {destination} gave no answer for {path.name}")
    if code not in (0x0000, 0xB000, 0xB007, 0xB006):  # success, or success with a warning
        raise StorageUnavailable(f"PACS {destination} refused {path.name}: status 0x{code:04X}")


def _header(path: Path) -> tuple[str, str]:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)
    except Exception:  # not DICOM: only DICOM instances can go to a PACS
        raise InvalidInput(f"{path.name} is not a DICOM instance; it cannot go to a PACS") from None
