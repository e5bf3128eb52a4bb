"""The gateway's REST routes, one router per resource (docs/PROTOCOL.md describes each).

Handlers stay thin: the signed-request headers and the gateway come in as dependencies, the work
runs off the event loop through the app's runner (which also counts it), and the answers are
typed models, so the OpenAPI schema at ``/openapi.json`` says what each route returns.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from scanseal.protocol import wire
from scanseal.service import _reads
from scanseal.service._http import MAX_JSON_BODY, read_body
from scanseal.service.apidocs import SIGNED_ROUTE
from scanseal.service.bodies import GrantBody, RevocationBody, json_body
from scanseal.service.front import signed_headers_of
from scanseal.service.gateway import Gateway

_BUNDLE_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {wire.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}
_BUNDLE_REPLY: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {wire.MEDIA_TYPE: {}}, "description": "bundle: manifest, grant, envelope"}
}


# --- dependencies (async: a sync one would cost each request a hop to the thread pool)


async def signed_request(request: Request) -> dict[str, str | None]:
    """The two headers of a signed request (checked by the gateway, which logs refusals), read
    as the fetch front reads them."""
    return signed_headers_of(request.scope)


async def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def runner_of(request: Request) -> Any:
    return request.app.state.run


Signed = Annotated[dict[str, str | None], Depends(signed_request)]
GatewayDep = Annotated[Gateway, Depends(gateway_of)]
Run = Annotated[Any, Depends(runner_of)]


# --- answers


class LedgerReceipt(BaseModel):
    """Where the ledger committed a write: a transaction (per-record) or a batched log entry."""

    mode: str
    record_id: str
    tx_hash: str | None
    log_index: int | None


class Uploaded(BaseModel):
    manifest_cid: str
    envelope_cid: str
    ledger: LedgerReceipt
    granted: list[str]


class Granted(BaseModel):
    grant_cid: str
    ledger: LedgerReceipt | None


class Revoked(BaseModel):
    revoked: str
    ledger: LedgerReceipt | None


class AuditLine(BaseModel):
    """One event of a record's trail (``AuditEntry.to_dict`` with names from members' cards;
    ``claimed_name``: the name a subject whose signature did not verify claimed)."""

    timestamp: int
    time: str
    action: str
    outcome: str
    actor: str
    actor_name: str | None
    subject: str | None
    subject_name: str | None
    subject_verified: bool | None
    claimed_name: str | None
    access_type: str | None
    allowed: bool | None
    reason: str | None
    detail: str | None
    source: str
    tx_hash: str | None
    proof: dict[str, Any] | None
    evidence: str
    record: str | None = Field(
        None, description="a study record's trail only: the record the event is about"
    )


class InboxEntry(BaseModel):
    seq: int
    record: str


class InboxPage(BaseModel):
    records: list[InboxEntry]
    next: int
    more: bool


class Verified(BaseModel):
    record: str
    checks: list[str]
    manifest: str
    screening: dict[str, Any] | None


class Health(BaseModel):
    """``status``: ok, starting or failing; ``checks``: one object per dependency, with ``ok``."""

    status: str
    version: str
    gateway: str
    chain_id: int
    contract: str
    ledger_mode: str
    max_lifetime: int
    failing: list[str]
    checks: dict[str, dict[str, Any]]


# --- routers

operations = APIRouter(tags=["operations"])
records = APIRouter(prefix="/v1/records", tags=["records"])
inbox = APIRouter(prefix="/v1", tags=["inbox"])


@operations.get(
    "/v1/health",
    summary="Gateway identity, chain and contract (the signing domain); each dependency's state",
    response_class=Response, responses={200: {"model": Health}, 503: {"model": Health}},
)  # fmt: skip
async def health(request: Request) -> Response:
    """ "starting" (HTTP 503) until the warm-up is done, "failing" (503) while a dependency is
    (``scanseal.service.health``)."""
    code, info = await run_in_threadpool(request.app.state.health.report)
    return Response(json.dumps(info).encode(), code, media_type="application/json")


@operations.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    """Off the event loop: the dependency series read the store's index and probe its disk."""
    text = await run_in_threadpool(generate_latest, request.app.state.metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


@records.post(
    "", summary="Upload a sealed envelope and its manifest; register the record",
    response_model=Uploaded, openapi_extra={**SIGNED_ROUTE, **_BUNDLE_BODY},
)  # fmt: skip
async def upload(request: Request, signed: Signed, gateway: GatewayDep, run: Run) -> Any:
    body = await read_body(request)
    return await run("upload", lambda: gateway.upload(signed, body))


@records.get(
    "/{record}",
    summary="Fetch a record by a signed request (single-use nonce; logged on the ledger)",
    response_class=Response, responses=_BUNDLE_REPLY, openapi_extra=SIGNED_ROUTE,
)  # fmt: skip
async def fetch(record: str, request: Request, signed: Signed) -> Response:
    status, media, body = await request.app.state.fetcher.answer(record, signed)
    return Response(body, status_code=status, media_type=media)


@records.post(
    "/{record}/grants", response_model=Granted,
    summary="Publish the owner's signed grant (a re-wrapped header) and grant on chain",
    openapi_extra={**SIGNED_ROUTE, **json_body(GrantBody)},
)  # fmt: skip
async def grant(
    record: str, request: Request, signed: Signed, gateway: GatewayDep, run: Run
) -> Any:
    body = await read_body(request, MAX_JSON_BODY)
    return await run("grant", lambda: gateway.grant(record, signed, body))


@records.post(
    "/{record}/revocations", response_model=Revoked,
    summary="Revoke a grantee's access (owner only); stops future releases",
    openapi_extra={**SIGNED_ROUTE, **json_body(RevocationBody)},
)  # fmt: skip
async def revoke(
    record: str, request: Request, signed: Signed, gateway: GatewayDep, run: Run
) -> Any:
    body = await read_body(request, MAX_JSON_BODY)
    return await run("revoke", lambda: gateway.revoke(record, signed, body))


@records.get(
    "/{record}/header", response_class=Response, openapi_extra=SIGNED_ROUTE,
    responses={200: {"content": {"application/octet-stream": {}},
                     "description": "the envelope header (no payload)"}},
    summary="The envelope header, for its owner to re-wrap for a grantee (signed as a grant)",
)  # fmt: skip
async def header(record: str, signed: Signed, gateway: GatewayDep, run: Run) -> Response:
    encoded = await run("header", lambda: gateway.header(record, signed))
    return Response(encoded, media_type="application/octet-stream")


@records.get(
    "/{record}/audit", response_model=list[AuditLine], openapi_extra=SIGNED_ROUTE,
    response_model_exclude_unset=True,
    summary="The record's audit trail (owner, grantees, auditors)",
)  # fmt: skip
async def audit(record: str, signed: Signed, gateway: GatewayDep, run: Run) -> Any:
    return await run("audit", lambda: _reads.audit(gateway, record, signed))


@records.get(
    "/{record}/verify", response_model=Verified,
    summary="Public checks against manifest and ledger",
)  # fmt: skip
async def verify(record: str, gateway: GatewayDep, run: Run) -> Any:
    return await run("verify", lambda: gateway.verify(record))


@inbox.get(
    "/inbox", response_model=InboxPage, openapi_extra=SIGNED_ROUTE,
    summary="Records granted to the caller after a cursor (the signed record)",
)  # fmt: skip
async def inbox_page(signed: Signed, gateway: GatewayDep, run: Run, after: int = 0) -> Any:
    return await run("inbox", lambda: _reads.inbox_for(gateway, after, signed))
