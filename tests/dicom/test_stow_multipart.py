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


def test_orthancs_long_boundary_is_accepted() -> None:
    boundary = "0f4e9d5c-8a4b-4c1e-9d3f-2b7a6c5e4d3f-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    assert len(boundary) == 73
    body = _BODY.replace(b"b1", boundary.encode())
    content_type = f"multipart/related; type=application/dicom; boundary={boundary}"
    assert split_multipart(content_type, body) == [b"DICM"]


@pytest.mark.parametrize(
    "boundary",
    [
        "fuzzbo\udcb2\udc80ndary",  # undecodable header bytes as surrogate escapes
        "bo\u00e9ndary",  # not ASCII
        "x" * 257,  # longer than the bound (RFC 2046 says 70; Orthanc sends 73)
        "ends-in-space ",
        "semi{colon}",
    ],
)
def test_a_boundary_outside_rfc_2046_is_refused(boundary: str) -> None:
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    with pytest.raises(InvalidInput, match="boundary"):
        split_multipart(content_type, _BODY)
