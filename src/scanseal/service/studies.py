"""The gateway's study routes: register a study manifest, find, show, grant and revoke it.

``POST /v1/studies`` (signed, action ``study``, the record being the manifest's CID; the body
is the canonical study manifest) runs ``transfer.study_records.register_study`` under the
ledger lock, indexes which instances the study lists (``_study_index``), then grants the study
record to the recipients its instances name and announces the instances whose uploads
deferred their grants to it (``_study_grants``: one grant transaction per study); ``GET
/v1/studies/{cid}`` is public, like a record's verify: the stored manifest and the hashes the
ledger holds for it, which a client checks against the manifest itself. ``GET
/v1/studies?uid_sha256=`` (signed ``study`` over the digest) lists the caller's own study
records of one study. ``POST /v1/studies/{cid}/grants`` (signed ``grant``) takes the owner's
grant object for each instance the grantee cannot open yet (its re-wrapped key) and grants
the study record on the ledger, one transaction: a fetch of any instance it lists is then
decided through it (``logAccessVia``). ``POST /v1/studies/{cid}/revocations`` (signed
``revoke``) revokes the study record, and the grantee's own grants on its instances if it
holds any, so nothing of the study stays open to it. A refused grant or revocation is logged
on the study record, as one on a record is.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Final

from eth_utils.address import is_address, to_checksum_address
from fastapi import APIRouter, Request

from scanseal._json import parse_object
from scanseal.errors import AccessDenied, InvalidInput, NotFound, ReplayDetected
from scanseal.ledger import AccessType, GrantState, Receipt
from scanseal.protocol import wire
from scanseal.service._grant_objects import accept_grant
from scanseal.service._http import MAX_JSON_BODY, read_body
from scanseal.service._requests import read_all as _read
from scanseal.service._requests import receipt_json as _receipt_json
from scanseal.service._requests import record_bytes as _record_bytes
from scanseal.service._study_grants import settle
from scanseal.service._study_index import StudyRow
from scanseal.service.apidocs import SIGNED_ROUTE
from scanseal.service.bodies import (
    RevocationBody,
    StudyGrantBody,
    StudyManifestBody,
    json_body,
)
from scanseal.service.gateway import Gateway
from scanseal.service.routes import GatewayDep, Run, Signed
from scanseal.storage import cid_of
from scanseal.transfer.grants import MAX_GRANT, Grant
from scanseal.transfer.records import cid_bytes
from scanseal.transfer.study_manifest import StudyManifest
from scanseal.transfer.study_records import register_study

studies = APIRouter(prefix="/v1/studies", tags=["studies"])
Headers = Mapping[str, str | None]
MAX_STUDY_GRANT_BODY: Final = 32 * 1024 * 1024
"""A study grant carries one grant object (about 2.5 KiB) per instance."""


def register(gateway: Gateway, headers: Any, body: bytes) -> dict[str, Any]:
    """Authenticate the uploader's request, then register its study manifest."""
    study = cid_of(io.BytesIO(body))
    who = gateway.authenticate("study", study, headers, body)

    def owner_of(record: str) -> str | None:
        stored = gateway.state.record(record)
        return None if stored is None else stored.owner

    done = gateway.locked(lambda: register_study(gateway.records, body, who.requester, owner_of))
    gateway.studies.index.add(done.cid, done.manifest, who.requester)  # after the ledger holds it
    grants = settle(gateway, done.cid, done.manifest)  # what the instances' uploads deferred
    return {
        "study_cid": done.cid,
        "instances": len(done.manifest.instances),
        "ledger": _receipt_json(done.receipt),
        "grants": [_receipt_json(receipt) for receipt in grants],
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


def find(gateway: Gateway, uid_sha256: str, headers: Headers) -> dict[str, Any]:
    """The caller's own study records of the study whose UID digest is ``uid_sha256``."""
    if len(uid_sha256) != 64 or any(c not in "0123456789abcdef" for c in uid_sha256):
        raise InvalidInput("uid_sha256 must be 64 lowercase hex digits")
    who = gateway.authenticate("study", uid_sha256, headers, b"")
    rows = gateway.studies.index.of_owner(who.requester, uid_sha256)
    return {"studies": [{"study": r.study, "instances": r.instances,
                         "created_at": r.created_at} for r in rows]}  # fmt: skip


def _owned_study(
    gateway: Gateway, action: str, kind: AccessType, study: str, headers: Headers, body: bytes
) -> tuple[StudyRow, StudyManifest]:
    """Authenticate ``action`` on ``study`` by the study's registrant (a refusal is logged on
    the study record first); the index row and the stored manifest."""
    _record_bytes(study)
    try:
        who = gateway.authenticate(action, study, headers, body)
        row = gateway.studies.index.study(study)
        if row is None:
            raise NotFound(f"study record {study} is not registered at this gateway")
        if row.owner != who.requester:
            raise AccessDenied(f"{who.requester} is not the owner of study record {study}")
    except (AccessDenied, ReplayDetected):
        gateway.log_refusal(kind, action, study, headers)
        raise
    return row, StudyManifest.from_bytes(_read(gateway.store, study))


def _grantee(body: dict[str, Any]) -> str:
    grantee = body.get("grantee")
    if not isinstance(grantee, str) or not is_address(grantee):
        raise InvalidInput("a study grant or revocation names the grantee's address")
    return to_checksum_address(grantee)


def grant(gateway: Gateway, study: str, headers: Headers, body: bytes) -> dict[str, Any]:
    """Check and hold the owner's grant object of each instance the grantee cannot open on
    its own, then grant the study record on the ledger (one transaction)."""
    _row, manifest = _owned_study(gateway, "grant", AccessType.GRANT, study, headers, body)
    top = parse_object(body, "study grant", max_size=MAX_STUDY_GRANT_BODY)
    grantee, raw = _grantee(top), top.get("grants")
    if sorted(top) != ["grantee", "grants"] or not isinstance(raw, list):
        raise InvalidInput("a study grant holds exactly grantee and grants (a list)")
    listed, issued = set(manifest.instances), []
    for item in raw:
        if not isinstance(item, str) or len(item) > MAX_GRANT:
            raise InvalidInput("each grant is a grant object's canonical JSON text")
        one = Grant.from_bytes(item)
        if one.record not in listed or to_checksum_address(one.grantee) != grantee:
            raise InvalidInput("a grant names a record outside the study or another grantee")
        stored = gateway.state.record(one.record)
        if stored is None:
            raise NotFound(f"instance record {one.record} is not held by this gateway")
        issued.append(accept_grant(gateway.store, stored, item.encode("utf-8")))
    covered = {one.record for one, _cid in issued}

    def on_chain() -> Receipt | None:
        def missed(record: str) -> bool:
            return record not in covered and not gateway.ledger.has_access(
                cid_bytes(record), grantee
            )

        missing = [record for record in manifest.instances if missed(record)]
        if missing:
            raise InvalidInput(f"the study grant has no grant object for {len(missing)} "
                               f"instance(s) the grantee cannot open: {missing[0]}")  # fmt: skip
        card = gateway.ledger.identity_of(grantee)
        if any(one.grantee_card_sha256 != card for one, _cid in issued):
            raise InvalidInput(f"{grantee} is not registered with the card the grants name")
        # held and announced before the chain grant, as for one record (gateway.hold_grant)
        gateway.state.set_grants([(one.record, grantee, cid) for one, cid in issued])
        gateway.inbox.add_records([one.record for one, _cid in issued], grantee)
        return gateway.records.grant(cid_bytes(study), grantee)

    gateway.audit_index.touch(cid_bytes(study))
    receipt = gateway.locked(on_chain)
    return {"study": study, "grantee": grantee, "instances": len(manifest.instances),
            "ledger": None if receipt is None else _receipt_json(receipt)}  # fmt: skip


def revoke(gateway: Gateway, study: str, headers: Headers, body: bytes) -> dict[str, Any]:
    """Revoke the study record for the grantee, and its own grants on the study's instances,
    so nothing of the study stays open to it; idempotent."""
    _row, manifest = _owned_study(gateway, "revoke", AccessType.REVOKE, study, headers, body)
    grantee = _grantee(wire.unpack_json(body))

    def on_chain() -> tuple[Receipt | None, int]:
        ledger, binary = gateway.ledger, cid_bytes(study)
        receipt = None
        if ledger.grant_state(binary, grantee) == GrantState.ACTIVE:
            receipt = gateway.records.revoke(binary, grantee)
        own = [r for r in manifest.instances
               if ledger.grant_state(cid_bytes(r), grantee) == GrantState.ACTIVE]  # fmt: skip
        for record in own:
            gateway.records.revoke(cid_bytes(record), grantee)
            gateway.state.end_grant(record, grantee)
        return receipt, len(own)

    gateway.audit_index.touch(cid_bytes(study))
    receipt, instances = gateway.locked(on_chain)
    return {"revoked": grantee, "study": study, "instances_revoked": instances,
            "ledger": None if receipt is None else _receipt_json(receipt)}  # fmt: skip


@studies.get(
    "",
    summary="The caller's study records of one study (by its UID's digest)",
    openapi_extra=SIGNED_ROUTE,
)
async def find_studies(uid_sha256: str, signed: Signed, gateway: GatewayDep, run: Run) -> Any:
    return await run("study", lambda: find(gateway, uid_sha256, signed))


@studies.post(
    "/{study}/grants",
    summary="Grant a whole study (owner's grant objects; one tx)",
    openapi_extra={**SIGNED_ROUTE, **json_body(StudyGrantBody)},
)
async def grant_study(
    study: str, request: Request, signed: Signed, gateway: GatewayDep, run: Run
) -> Any:
    body = await read_body(request, MAX_STUDY_GRANT_BODY)
    return await run("grant", lambda: grant(gateway, study, signed, body))


@studies.post(
    "/{study}/revocations",
    summary="Revoke a whole study for a grantee (owner)",
    openapi_extra={**SIGNED_ROUTE, **json_body(RevocationBody)},
)
async def revoke_study(
    study: str, request: Request, signed: Signed, gateway: GatewayDep, run: Run
) -> Any:
    body = await read_body(request, MAX_JSON_BODY)
    return await run("revoke", lambda: revoke(gateway, study, signed, body))


@studies.post(
    "",
    summary="Register a study manifest (its uploader's signed request)",
    openapi_extra={**SIGNED_ROUTE, **json_body(StudyManifestBody)},
)
async def post_study(request: Request, signed: Signed, gateway: GatewayDep, run: Run) -> Any:
    body = await read_body(request, MAX_JSON_BODY)
    return await run("study", lambda: register(gateway, signed, body))


@studies.get("/{study}", summary="A registered study manifest and its ledger hashes (public)")
async def get_study(study: str, gateway: GatewayDep, run: Run) -> Any:
    return await run("verify", lambda: show(gateway, study))
