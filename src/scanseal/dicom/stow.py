"""DICOMweb STOW-RS (PS3.18 10.5) as a second way in: ``POST /dicom-web/studies[/{study}]``.

The body is ``multipart/related; type="application/dicom"``, one Part 10 instance per part. Each
instance goes through the same :class:`~scanseal.dicom.scp.Receiver` as a C-STORE (seal for the
configured recipients, Gateway.upload, index). The answer follows PS3.18: 200 when every
instance was stored, 202 when some failed, 409 when none was, 415 for another media type; the
body is a DICOM JSON data set with ReferencedSOPSequence and FailedSOPSequence. Each stored
instance's item carries its RetrieveURL (0008,1190): the record on this gateway,
``/v1/records/{manifest CID}`` (a signed fetch, docs/PROTOCOL.md), and the record's manifest CID
itself in a private element, (0009,1001) UT of private creator (0009,0010) ``SCANSEAL``
(docs/DICOM.md). Like the SCP it is meant for the department network: it is mounted only with
``[dicom] stow = true``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from scanseal.dicom.scp import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    STOW,
    SUCCESS,
    Receiver,
    log_refused,
    read_received,
    status_for,
)
from scanseal.errors import InvalidInput, ScanSealError

T = TypeVar("T")
Runner = Callable[[str, Callable[[], T]], Awaitable[T]]
MEDIA_TYPE: Final = "application/dicom+json"
_BOUNDARY: Final = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_BCHARS: Final = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{0,255}[0-9A-Za-z'()+_,./:=?-]")
"""RFC 2046 §5.1.1's boundary characters, not ending in a space. Its 70-character limit is not
enforced: Orthanc's DICOMweb client sends two UUIDs joined by a dash (73 characters); 256 is
the bound here."""
_PROCESSING_FAILURE: Final = 0x0110


def split_multipart(content_type: str, body: bytes) -> list[bytes]:
    """The application/dicom parts of a multipart/related body, byte for byte."""
    kind = content_type.split(";")[0].strip().lower()
    if kind != "multipart/related":
        raise InvalidInput("STOW-RS wants multipart/related")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise InvalidInput("multipart/related without a boundary")
    if _BCHARS.fullmatch(match.group(1)) is None:
        raise InvalidInput("multipart boundary is not 1 to 256 RFC 2046 boundary characters")
    delimiter = b"--" + match.group(1).encode("ascii")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise InvalidInput("multipart body is not closed by its boundary")
    parts = []
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise InvalidInput("multipart part without headers")
        headers = head.decode("latin-1").lower()
        if "content-type:" in headers and "application/dicom" not in headers:
            raise InvalidInput("every STOW-RS part must be application/dicom")
        parts.append(content.removesuffix(b"\r\n"))
    return parts


def add_routes(
    app: FastAPI, receiver: Receiver, run: Runner[Any], body: Callable[..., Any]
) -> None:
    """Mount STOW-RS on ``app`` over ``receiver``: ``run`` runs blocking work off the event loop
    (and counts it), ``body`` reads a request body within the app's limit; the app that mounts
    it gives both (``scanseal.service.create_app``'s mounts)."""

    async def store(request: Request, study: str | None = None) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/related"):
            return JSONResponse({"error": "InvalidInput", "reason": "multipart/related only"},
                                status_code=415)  # fmt: skip
        raw = await body(request)
        parts = split_multipart(content_type, raw)
        base = str(request.base_url).rstrip("/")
        answer = await run("stow", lambda: _store_all(receiver, parts, study, base))
        return JSONResponse(answer[1], status_code=answer[0], media_type=MEDIA_TYPE)

    app.add_api_route("/dicom-web/studies", store, methods=["POST"],
                      summary="STOW-RS: store DICOM instances (multipart/related)")  # fmt: skip
    app.add_api_route("/dicom-web/studies/{study}", store, methods=["POST"],
                      summary="STOW-RS into one study")  # fmt: skip


def _store_all(
    receiver: Receiver, parts: list[bytes], study: str | None, base: str
) -> tuple[int, dict[str, Any]]:
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for raw in parts:
        started = time.perf_counter()
        header, status, reason, record = None, SUCCESS, "", ""
        try:
            received = read_received(raw)
            header = received.header
            if not header.get("SOPClassUID"):  # Type 1, and what the answer references it by
                status, reason = CANNOT_UNDERSTAND, "the data set has no SOP Class UID"
            elif study is not None and header.get("StudyInstanceUID") != study:
                status, reason = DATASET_MISMATCH, f"the instance is not of study {study}"
            else:
                record = receiver.receive(received, STOW)  # logs the instance and its verdict
        except ScanSealError as error:
            status, reason = status_for(error), error.reason
        except Exception as error:  # never report a failure as stored
            status, reason = _PROCESSING_FAILURE, f"internal error: {type(error).__name__}"
        if status == SUCCESS:
            stored.append(_stored(header, record, base))
        else:
            log_refused(STOW, header, status, reason)
            failed.append(_failure(header, status))
        receiver.observe(STOW, status, time.perf_counter() - started)
    result: dict[str, Any] = {}
    if stored:
        result["00081199"] = {"vr": "SQ", "Value": stored}
    if failed:
        result["00081198"] = {"vr": "SQ", "Value": failed}
    code = 200 if not failed else (202 if stored else 409)
    return code, result


PRIVATE_CREATOR: Final = "SCANSEAL"
"""The private creator (0009,0010) of the record element (0009,1001) in a STOW-RS answer."""


def _stored(header: Any, record: str, base: str) -> dict[str, Any]:
    """One ReferencedSOPSequence item: the UIDs, the RetrieveURL of the record, the record."""
    item = _reference(header)
    item["00081190"] = {"vr": "UR", "Value": [f"{base}/v1/records/{record}"]}
    item["00090010"] = {"vr": "LO", "Value": [PRIVATE_CREATOR]}
    item["00091001"] = {"vr": "UT", "Value": [record]}
    return item


def _failure(header: Any, reason: int) -> dict[str, Any]:
    """One FailedSOPSequence item: what is known of the instance and its FailureReason."""
    item = _reference(header) if header is not None else {}
    item["00081197"] = {"vr": "US", "Value": [reason]}
    return item


def _reference(header: Any) -> dict[str, Any]:
    """Referenced SOP Class and Instance UIDs of one part: those the data set holds and can
    spell. A refused instance may lack either (or hold one pydicom cannot read); its failure is
    still reported, with what is known of it."""
    item: dict[str, Any] = {}
    for tag, keyword in (("00081150", "SOPClassUID"), ("00081155", "SOPInstanceUID")):
        try:
            value = header.get(keyword)
        except Exception:  # a value pydicom cannot decode: the part is reported without it
            value = None
        if value:
            item[tag] = {"vr": "UI", "Value": [str(value)]}
    return item
