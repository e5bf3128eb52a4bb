"""The gateway's study routes: register a study manifest, and show it with its ledger record.

``POST /v1/studies`` (signed, action ``study``, the record being the manifest's CID; the body
is the canonical study manifest) runs ``transfer.study_records.register_study`` under the
ledger lock; ``GET /v1/studies/{cid}`` is public, like a record's verify: the stored manifest
and the hashes the ledger holds for it, which a client checks against the manifest itself.
"""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Request

from scanseal.errors import InvalidInput
from scanseal.service._http import MAX_JSON_BODY, read_body
from scanseal.service._requests import read_all as _read
from scanseal.service._requests import receipt_json as _receipt_json
from scanseal.service._requests import record_bytes as _record_bytes
from scanseal.service.apidocs import SIGNED_ROUTE
from scanseal.service.bodies import StudyManifestBody, json_body
from scanseal.service.gateway import Gateway
from scanseal.service.routes import GatewayDep, Run, Signed
from scanseal.storage import cid_of
from scanseal.transfer.records import cid_bytes
from scanseal.transfer.study_records import register_study

studies = APIRouter(prefix="/v1/studies", tags=["studies"])


def register(gateway: Gateway, headers: Any, body: bytes) -> dict[str, Any]:
    """Authenticate the uploader's request, then register its study manifest."""
    study = cid_of(io.BytesIO(body))
    who = gateway.authenticate("study", study, headers, body)

    def owner_of(record: str) -> str | None:
        stored = gateway.state.record(record)
        return None if stored is None else stored.owner

    done = gateway.locked(lambda: register_study(gateway.records, body, who.requester, owner_of))
    return {
        "study_cid": done.cid,
        "instances": len(done.manifest.instances),
        "ledger": _receipt_json(done.receipt),
    }


def show(gateway: Gateway, study: str) -> dict[str, Any]:
    """The stored study manifest and its ledger record's hashes (public)."""
    binary = _record_bytes(study)
    held = gateway.locked(lambda: gateway.ledger.get_record(binary))
    if held.cid != cid_bytes(study):
        raise InvalidInput(f"{study} names another record on the ledger")
    return {
        "study": study,
        "manifest": _read(gateway.store, study).decode("utf-8"),
        "ledger": {
            "image_hash": held.image_hash.hex(),
            "h3": held.h3.hex(),
            "pixel_digest": held.pixel_digest.hex(),
            "uploader": held.uploader,
        },
    }


@studies.post(
    "", summary="Register a study manifest (its uploader's signed request)",
    openapi_extra={**SIGNED_ROUTE, **json_body(StudyManifestBody)},
)  # fmt: skip
async def post_study(request: Request, signed: Signed, gateway: GatewayDep, run: Run) -> Any:
    body = await read_body(request, MAX_JSON_BODY)
    return await run("study", lambda: register(gateway, signed, body))


@studies.get("/{study}", summary="A registered study manifest and its ledger hashes (public)")
async def get_study(study: str, gateway: GatewayDep, run: Run) -> Any:
    return await run("verify", lambda: show(gateway, study))
