"""STOW-RS multipart splitting: hostile Content-Type boundaries are one InvalidInput, no crash."""

from __future__ import annotations

import pytest

from scanseal.dicom.stow import split_multipart
from scanseal.errors import InvalidInput

_BODY = b"--b1\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--b1--\r\n"


def test_a_valid_boundary_splits_the_parts() -> None:
    assert split_multipart('multipart/related; type="application/dicom"; boundary=b1', _BODY) == [
        b"DICM"
    ]


@pytest.mark.parametrize(
    "boundary",
    [
        "fuzzbo\udcb2\udc80ndary",  # undecodable header bytes as surrogate escapes
        "bo\u00e9ndary",  # not ASCII
        "x" * 71,  # longer than RFC 2046 allows
        "ends-in-space ",
        "semi{colon}",
    ],
)
def test_a_boundary_outside_rfc_2046_is_refused(boundary: str) -> None:
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    with pytest.raises(InvalidInput, match="boundary"):
        split_multipart(content_type, _BODY)
