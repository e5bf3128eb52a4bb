"""The JSON request bodies of the gateway's routes, as typed models for the OpenAPI schema.

The handlers read each body as raw bytes (its SHA-256 is signed in the request header, so the
exact bytes matter) and parse it strictly themselves (``transfer.Grant.from_bytes``,
``StudyManifest.from_bytes``, ``audit_query``); these models only describe those bodies at
``/openapi.json`` (docs/PROTOCOL.md), so the wire format is what it was. :func:`json_body` is a
route's ``openapi_extra`` request body naming a model; :data:`SCHEMAS` holds each model's
schema for the schema's components.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

_ADDRESS: Final = r"^0x[0-9a-fA-F]{40}$"
_HEX32: Final = r"^[0-9a-f]{64}$"
_EXACT: Final = ConfigDict(extra="forbid")


class GrantBody(BaseModel):
    """A grant (docs/FORMAT.md): the envelope header re-wrapped by the record's owner for the
    grantee, signed by the owner over the canonical JSON of every other field."""

    model_config = _EXACT
    scanseal_grant: int = Field(description="the grant format's version", examples=[1])
    record: str = Field(description="the record's manifest CID")
    owner: str = Field(pattern=_ADDRESS, description="the owner's address (the signer)")
    grantee: str = Field(pattern=_ADDRESS, description="the grantee's address")
    grantee_card_sha256: str = Field(pattern=_HEX32, description="SHA-256 of the grantee's card")
    header: str = Field(description="the re-wrapped envelope header, base64")
    issued_at: int = Field(description="Unix seconds")
    signature: str = Field(description="the owner's signature, 0x + 130 hex")


class RevocationBody(BaseModel):
    """Whose access to revoke (the owner's signed request)."""

    model_config = _EXACT
    grantee: str = Field(pattern=_ADDRESS, description="the grantee's address")


class AuditQueryBody(BaseModel):
    """The filters of an audit query across records; each left out matches everything."""

    model_config = _EXACT
    records: list[str] | None = Field(None, max_length=1000, description="manifest CIDs")
    identity: str | None = Field(None, description="actor or subject: an address or card name")
    actor: str | None = Field(None, description="an address or a member's card name")
    subject: str | None = Field(None, description="an address or a member's card name")
    action: Literal["stored", "granted", "revoked", "access", "admin"] | None = None
    outcome: Literal["success", "denied", "unauthenticated"] | None = None
    since: str | None = Field(None, description="ISO 8601 with its zone, e.g. 2026-12-01T00:00Z")
    until: str | None = Field(None, description="ISO 8601 with its zone")
    limit: int | None = Field(None, ge=1, le=500, description="events per page (default 100)")
    cursor: str | None = Field(None, description="the `next` of the page before")


class StudyUploader(BaseModel):
    model_config = _EXACT
    name: str
    address: str = Field(pattern=_ADDRESS)


class StudyManifestBody(BaseModel):
    """A study manifest (docs/FORMAT.md §7), signed by its uploader; its CID names the study."""

    model_config = _EXACT
    scanseal_study: int = Field(description="the study manifest format's version", examples=[1])
    study_uid_sha256: str = Field(pattern=_HEX32, description="SHA-256 of the Study UID")
    instances: list[str] = Field(min_length=1, description="instance record CIDs, sorted")
    merkle_root: str = Field(pattern=_HEX32, description="Merkle root of the instances")
    uploader: StudyUploader
    created_at: int = Field(description="Unix seconds")
    signature: str = Field(description="the uploader's signature, 0x + 130 hex")


class StudyGrantBody(BaseModel):
    """A study grant: the grantee and the owner's grant object (canonical JSON text) for each
    instance of the study the grantee cannot open on its own; one ledger grant of the study."""

    model_config = _EXACT
    grantee: str = Field(pattern=_ADDRESS, description="the grantee's address")
    grants: list[str] = Field(description="grant objects (docs/FORMAT.md), each as JSON text")


MODELS: Final[tuple[type[BaseModel], ...]] = (
    GrantBody,
    RevocationBody,
    AuditQueryBody,
    StudyUploader,
    StudyManifestBody,
    StudyGrantBody,
)
SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
    for model in MODELS
}
for _schema in SCHEMAS.values():
    _schema.pop("$defs", None)  # every nested model is a component of its own


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is ``model``."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
