"""DICOM statuses are chosen from the error's class, never from the words of its reason."""

from __future__ import annotations

import pytest

from scanseal.dicom.scp import (
    CANNOT_UNDERSTAND,
    FAILED,
    OUT_OF_RESOURCES,
    REFUSED_BY_SCREEN,
    parse_header,
    status_for,
)
from scanseal.errors import (
    IntegrityError,
    InvalidInput,
    LedgerUnavailable,
    ScanSealError,
    StorageUnavailable,
    Unreadable,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unreadable("x.dcm: anything at all"), CANNOT_UNDERSTAND),
        (InvalidInput("the data set cannot be parsed (undecodable)"), REFUSED_BY_SCREEN),
        (InvalidInput("recipient lee is not registered on the ledger"), REFUSED_BY_SCREEN),
        (StorageUnavailable("node down"), OUT_OF_RESOURCES),
        (LedgerUnavailable("node down"), OUT_OF_RESOURCES),
        (IntegrityError("cannot be parsed"), FAILED),
    ],
)
def test_the_status_follows_the_error_class(error: ScanSealError, status: int) -> None:
    assert status_for(error) == status


@pytest.mark.parametrize("raw", [b"", b"not dicom at all", b"\x00" * 132 + b"DICM"])
def test_an_unparsable_data_set_is_unreadable(raw: bytes) -> None:
    with pytest.raises(Unreadable):
        parse_header(raw)
