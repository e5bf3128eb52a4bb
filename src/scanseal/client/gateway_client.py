"""A gateway client: seal and send, fetch and open, grant, revoke, audit and verify over HTTP.

Nothing the gateway or the network returns is trusted. A fetched bundle is opened only after the
manifest hashes to the CID asked for, its signature holds, the envelope matches it, a grant (if
any) is signed by the owner, and the ledger hashes the gateway reports equal the manifest's;
then the plaintext's H1–H3 are checked while decrypting. Any failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import ssl
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from scanseal import errors
from scanseal._json import parse_value
from scanseal.crypto import envelope
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import (
    GatewayUnavailable,
    IntegrityError,
    InvalidInput,
    NotFound,
    ScanSealError,
)
from scanseal.protocol import wire
from scanseal.protocol.signed import Domain, signed_headers
from scanseal.storage import cid_of
from scanseal.transfer import (
    Grant,
    LedgerHashes,
    Manifest,
    OpenedFile,
    Progress,
    SealedFile,
    issue_grant,
    open_checked,
    seal_for_upload,
)
from scanseal.transfer.catalogue import Described, describe_unlocked
from scanseal.transfer.checked import Unlocked, unlock_record
from scanseal.transfer.study_manifest import StudyManifest, study_uid_digest


class GatewayClient:
    """One identity talking to one gateway (``ca``: the CA file that signed its certificate)."""

    def __init__(
        self,
        url: str,
        identity: Identity | None = None,
        *,
        ca: Path | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        """``http``, when given, is the HTTP client to use (its base URL must be ``url``): a
        proxy's, or an in-process ASGI test client. It stays the caller's to close."""
        self.url = url.rstrip("/")
        self.identity = identity
        verify: ssl.SSLContext | bool = True
        if ca is not None:
            verify = ssl.create_default_context(cafile=str(ca))
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout, verify=verify)
        self._owns_http = http is None
        self._domain: Domain | None = None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- plumbing

    def health(self) -> dict[str, Any]:
        """Identity, chain and contract of the gateway (the fields a signing domain needs).

        A gateway whose dependency is down answers HTTP 503 with ``"status": "failing"`` and
        still the same domain: it is taken, and a request that needs the dependency is refused
        on its own with its reason. ``"starting"`` (503 until warmed up) is an error here."""
        info: dict[str, Any] = self._json("GET", "/v1/health", failing_ok=True)
        if not _typed(info, {"chain_id": int, "contract": str, "gateway": str}):
            raise self._off_protocol("/v1/health")
        if not 0 <= info["chain_id"] < 2**256 or not all(
            _ADDRESS.fullmatch(info[key]) for key in ("contract", "gateway")
        ):
            raise self._off_protocol("/v1/health")
        return info

    @property
    def domain(self) -> Domain:
        """The signing domain, read once from the gateway's health endpoint."""
        if self._domain is None:
            info = self.health()
            self._domain = Domain(info["chain_id"], info["contract"], info["gateway"])
        return self._domain

    def _me(self) -> Identity:
        if self.identity is None:
            raise InvalidInput("this action needs an identity (--as NAME)")
        return self.identity

    def signed(self, action: str, record: str, body: bytes = b"") -> dict[str, str]:
        return signed_headers(self._me().signer, self.domain, action, record, body=body)

    def _call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        failing_ok: bool = False,
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=headers, content=body or None)
        except httpx.HTTPError as error:
            raise GatewayUnavailable(f"gateway {self.url}: {error}") from None
        if response.status_code != 200 and not (failing_ok and _failing(response)):
            raise error_from_response(response)
        return response

    def _json(self, method: str, path: str, kind: type = dict, **kwargs: Any) -> Any:
        """The JSON answer, which must be a ``kind`` (an object unless said otherwise)."""
        response = self._call(method, path, **kwargs)
        try:
            answer = parse_value(response.content, "answer")
        except ScanSealError as error:
            raise GatewayUnavailable(
                f"gateway {self.url} answered {path.split('?')[0]} outside its protocol: {error}"
            ) from None
        if not isinstance(answer, kind):
            raise self._off_protocol(path.split("?")[0])
        return answer

    def _object(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        **fields: type,
    ) -> dict[str, Any]:
        """A JSON object answer whose ``fields`` have those types (the ones callers read)."""
        answer: dict[str, Any] = self._json(method, path, headers=headers, body=body)
        if not _typed(answer, fields):
            raise self._off_protocol(path.split("?")[0])
        return answer

    def _off_protocol(self, path: str) -> GatewayUnavailable:
        return GatewayUnavailable(f"gateway {self.url} answered {path} outside its protocol")

    # --- workflows

    def send(
        self,
        source: Path,
        recipients: Sequence[IdentityCard],
        workdir: Path,
        *,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Seal ``source`` here (the gateway never sees plaintext) and upload it."""
        return self.upload(self.seal(source, recipients, workdir, progress=progress))

    def seal(
        self,
        source: Path,
        recipients: Sequence[IdentityCard],
        workdir: Path,
        *,
        progress: Progress | None = None,
    ) -> SealedFile:
        """Seal ``source`` as this identity for an :meth:`upload` (what :meth:`send` does
        first); a caller that shows the signed manifest (its screening verdict) seals here."""
        return seal_for_upload(source, recipients, self._me(), workdir, progress=progress)

    def upload(self, sealed: SealedFile, *, with_study: bool = False) -> dict[str, Any]:
        """Upload a sealed file; ``with_study``: no recipient may read it until the study
        record listing it is registered (:meth:`register_study` grants it, docs/PROTOCOL.md)."""
        manifest = sealed.manifest_path.read_bytes()
        meta = {"manifest": manifest.decode("utf-8")} | ({"grants": "study"} if with_study else {})
        body = wire.pack(meta, sealed.envelope.read_bytes())
        record = cid_of(io.BytesIO(manifest))
        headers = {**self.signed("upload", record, body), "Content-Type": wire.MEDIA_TYPE}
        return self._object("POST", "/v1/records", headers=headers, body=body, manifest_cid=str)

    def fetch_bundle(self, record: str) -> bytes:
        """One signed fetch: the raw bundle (manifest, grant, ledger hashes, envelope)."""
        return self._call(
            "GET", f"/v1/records/{record}", headers=self.signed("fetch", record)
        ).content

    def fetch(self, record: str, output: Path, *, progress: Progress | None = None) -> OpenedFile:
        """Fetch ``record`` and open it into ``output``, checking everything on the way."""
        return open_bundle(self.fetch_bundle(record), record, self._me(), output, progress)

    def describe(self, record: str) -> Described:
        """Fetch ``record`` (a signed fetch, logged on the ledger) and read what it is — study,
        series, instance, patient, sender, the screen's warning — without writing it anywhere:
        what ``scanseal inbox`` lists (``transfer.catalogue``)."""
        return self.describe_bundle(self.fetch_bundle(record), record)

    def describe_bundle(self, bundle: bytes | Bundle, record: str) -> Described:
        """:meth:`describe` of a bundle already fetched (which :func:`open_bundle` may then
        open, so a record is downloaded once to be both described and written; pass it
        :func:`parse_bundle`'s answer to both so it is taken apart once)."""
        return self.describe_unlocked(bundle, record)[0]

    def describe_unlocked(self, bundle: bytes | Bundle, record: str) -> tuple[Described, Unlocked]:
        """:meth:`describe_bundle`, with what it unlocked (signature and grant checked, file key
        unwrapped) for :func:`open_bundle` to open the same bundle without doing it again."""
        parts = _parts(bundle, record, self._me())
        header = envelope.read_header(io.BytesIO(parts.payload))
        keys = self._me().transport_keys.values()
        unlocked = unlock_record(parts.manifest, header, keys, parts.grant)
        return describe_unlocked(record, unlocked), unlocked

    def register_study(self, manifest: StudyManifest) -> dict[str, Any]:
        """Register a signed study manifest (docs/FORMAT.md §7) as one ledger record."""
        body = manifest.to_bytes()
        study = cid_of(io.BytesIO(body))
        headers = {**self.signed("study", study, body), "Content-Type": "application/json"}
        return self._object("POST", "/v1/studies", headers=headers, body=body, study_cid=str)

    def study(self, study: str) -> StudyManifest:
        """A registered study manifest, checked: it hashes to ``study``, its signature and root
        hold, and the ledger hashes the gateway reports are the manifest's own."""
        answer = self._object("GET", f"/v1/studies/{study}", manifest=str, ledger=dict)
        raw = answer["manifest"].encode("utf-8")
        if cid_of(io.BytesIO(raw)) != study:
            raise IntegrityError("the study manifest received does not hash to its CID")
        manifest = StudyManifest.from_bytes(raw)
        manifest.verify()
        held = answer["ledger"]
        expected = {
            "image_hash": manifest.merkle_root.hex(),
            "pixel_digest": manifest.study_uid_sha256.hex(),
            "h3": hashlib.sha256(raw).hexdigest(),
        }
        if any(held.get(key) != value for key, value in expected.items()):
            raise IntegrityError("the ledger's study record differs from the study manifest")
        return manifest

    def holds(self, record: str) -> bool:
        """Whether the gateway holds ``record`` registered (its public verify answers), so a
        resumed send can tell an upload that went through from one that did not."""
        try:
            self.verify(record)
        except NotFound:
            return False
        return True

    def grant(self, record: str, grantee: IdentityCard) -> dict[str, Any]:
        """Re-wrap the record's file key for ``grantee`` (as its owner) and publish the grant.
        The gateway sends the owner the envelope's header alone, so the trail shows a grant, not
        a download."""
        body = self._grant_object(record, grantee).to_bytes()
        headers = {**self.signed("grant", record, body), "Content-Type": "application/json"}
        path = f"/v1/records/{record}/grants"
        return self._object("POST", path, headers=headers, body=body, grant_cid=str)

    def _grant_object(self, record: str, grantee: IdentityCard) -> Grant:
        """The owner's grant of ``record`` for ``grantee``: the envelope header alone fetched
        (signed as a grant, so the trail shows a grant, not a download), its key re-wrapped."""
        path = f"/v1/records/{record}/header"
        encoded = self._call("GET", path, headers=self.signed("grant", record)).content
        return issue_grant(record, envelope.read_header(io.BytesIO(encoded)), self._me(), grantee)

    def studies_of(self, study_uid: str) -> list[dict[str, Any]]:
        """The caller's own study records of the study ``study_uid``, newest first (each
        ``study``, ``instances``, ``created_at``); the gateway sees only the UID's digest."""
        digest = study_uid_digest(study_uid).hex()
        path = f"/v1/studies?uid_sha256={digest}"
        answer = self._object("GET", path, headers=self.signed("study", digest), studies=list)
        found = answer["studies"]
        if not all(_typed(s, {"study": str, "instances": int}) for s in found):
            raise self._off_protocol("/v1/studies")
        return list(found)

    def grant_study(self, study: str, grantee: IdentityCard) -> dict[str, Any]:
        """Grant a whole study record (as its owner): the instances' keys re-wrapped for
        ``grantee`` (each instance's header fetched as a grant, not a read) and one ledger
        grant on the study record, which then opens every instance it lists."""
        records = self.study(study).instances
        with ThreadPoolExecutor(GRANT_HEADERS_AT_ONCE, thread_name_prefix="grant") as pool:
            objects = list(pool.map(lambda r: self._grant_object(r, grantee), records))
        grants = [grant.to_bytes().decode("utf-8") for grant in objects]
        body = json.dumps({"grantee": grantee.address, "grants": grants}).encode()
        headers = {**self.signed("grant", study, body), "Content-Type": "application/json"}
        path = f"/v1/studies/{study}/grants"
        return self._object("POST", path, headers=headers, body=body, instances=int)

    def revoke_study(self, study: str, grantee: str) -> dict[str, Any]:
        """Revoke a study record for ``grantee`` (and its own grants on the instances)."""
        body = json.dumps({"grantee": grantee}).encode()
        headers = {**self.signed("revoke", study, body), "Content-Type": "application/json"}
        path = f"/v1/studies/{study}/revocations"
        return self._object("POST", path, headers=headers, body=body, instances_revoked=int)

    def revoke(self, record: str, grantee: str) -> dict[str, Any]:
        body = json.dumps({"grantee": grantee}).encode()
        headers = {**self.signed("revoke", record, body), "Content-Type": "application/json"}
        path = f"/v1/records/{record}/revocations"
        return self._object("POST", path, headers=headers, body=body)

    def audit(self, record: str) -> list[dict[str, Any]]:
        """The record's trail, ``AuditEntry.to_dict`` form: when, action and actor typed."""
        path = f"/v1/records/{record}/audit"
        trail = self._json("GET", path, list, headers=self.signed("audit", record))
        if not all(_audit_entry(e) for e in trail):
            raise self._off_protocol(path)
        return list(trail)

    def audit_page(self, **filters: Any) -> dict[str, Any]:
        """One page of an audit query (``POST /v1/audit``): ``{events, next, repaired}``.
        ``filters``: records, identity, actor, subject, action, outcome, since, until (ISO
        8601), limit and cursor, as docs/PROTOCOL.md lists them (None values left out)."""
        chosen = {key: value for key, value in filters.items() if value is not None}
        body = json.dumps(chosen, sort_keys=True).encode()
        headers = {**self.signed("audit", "query", body), "Content-Type": "application/json"}
        page = self._object("POST", "/v1/audit", headers=headers, body=body, events=list,
                            repaired=int)  # fmt: skip
        if not all(_audit_entry(e) for e in page["events"]) or not isinstance(
            page.get("next"), str | None
        ):
            raise self._off_protocol("/v1/audit")
        return page

    def audit_query(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every event matching ``filters`` (see :meth:`audit_page`), page after page as
        they are read; a ``limit`` is the page size here, not a total."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.audit_page(**filters, cursor=cursor)
            yield from page["events"]
            cursor = page["next"]
            if cursor is None:
                return

    def inbox(self, after: int = 0) -> dict[str, Any]:
        """Records granted to us after cursor ``after``: ``{records: [{seq, record}], next,
        more}``."""
        headers = self.signed("inbox", str(after))
        path = f"/v1/inbox?after={after}"
        page = self._object("GET", path, headers=headers, records=list, next=int, more=bool)
        entries = page["records"]
        if not 0 <= page["next"] < 2**63 or not all(_typed(e, _INBOX_ENTRY) for e in entries):
            raise self._off_protocol("/v1/inbox")
        return page

    def verify(self, record: str) -> dict[str, Any]:
        """The gateway's public checks; its ``manifest`` (text), when sent, is for
        :func:`record_manifest` to check before anything in it is shown."""
        path = f"/v1/records/{record}/verify"
        report = self._object("GET", path, checks=list)
        if not all(isinstance(check, str) for check in report["checks"]):
            raise self._off_protocol(path)
        if not isinstance(report.get("manifest", ""), str):
            raise self._off_protocol(path)
        return report


@dataclass(frozen=True)
class Bundle:
    """A fetch response taken apart once (:func:`parse_bundle`), to be described and opened."""

    record: str
    meta: dict[str, Any]
    manifest: Manifest
    grant: Grant | None
    payload: bytes


def open_bundle(
    bundle: bytes | Bundle,
    record: str,
    identity: Identity,
    output: Path,
    progress: Progress | None = None,
    *,
    unlocked: Unlocked | None = None,
) -> OpenedFile:
    """Check and open a fetch response; IntegrityError if anything in it was altered. The
    envelope is decrypted from the response's bytes (no copy of it on disk). ``unlocked``:
    what :meth:`GatewayClient.describe_unlocked` unlocked of this same parsed ``bundle``."""
    parts = _parts(bundle, record, identity)
    hashes = _ledger_hashes(parts.meta.get("record"))
    return open_checked(parts.payload, parts.manifest, identity, output, hashes,
                        grant=parts.grant, progress=progress, unlocked=unlocked)  # fmt: skip


def parse_bundle(bundle: bytes, record: str, identity: Identity) -> Bundle:
    """A fetch response's fields, its manifest (checked against the record's CID), its grant
    (checked to be for this record and recipient) and its envelope bytes."""
    meta, payload = wire.unpack(bundle)
    wire.require_keys(meta, "grant", "manifest", "record")
    manifest = record_manifest(str(wire.text_field(meta, "manifest")), record)
    grant_text = wire.text_field(meta, "grant", optional=True)
    grant = None if grant_text is None else Grant.from_bytes(grant_text)
    if grant is not None and (grant.record != record or grant.grantee != identity.address):
        raise IntegrityError("the grant received is for another record or recipient")
    return Bundle(record, meta, manifest, grant, payload)


def _parts(bundle: bytes | Bundle, record: str, identity: Identity) -> Bundle:
    """``bundle`` parsed, or as parsed already for this record."""
    if isinstance(bundle, bytes):
        return parse_bundle(bundle, record, identity)
    if bundle.record != record:
        raise InvalidInput("a parsed bundle is opened as the record it was parsed for")
    return bundle


def record_manifest(text: str, record: str) -> Manifest:
    """The manifest a gateway sent for ``record``, parsed once it hashes to the record's CID
    (which names it): a gateway can leave it out, never swap it. Its signature is checked by
    whatever reads it (``open_checked``, ``transfer.screen_verdict``)."""
    raw = text.encode("utf-8")
    if cid_of(io.BytesIO(raw)) != record:
        raise IntegrityError("the manifest received does not hash to the record's CID")
    return Manifest.from_json(raw)


GRANT_HEADERS_AT_ONCE: Final = 4
"""Instance headers a study grant fetches at once (one signed request each)."""
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_LAST_TIMESTAMP: Final = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can show
_INBOX_ENTRY: Final = {"seq": int, "record": str}
_AUDIT_ENTRY: Final = {"timestamp": int, "action": str, "actor": str}
_MAX_ERROR: Final = 64 * 1024


def _failing(response: httpx.Response) -> bool:
    """A health answer of 503 ``"failing"``: the gateway is up, one of its dependencies not."""
    try:
        answer = parse_value(response.content, "health answer", max_size=_MAX_ERROR)
    except ScanSealError:
        return False
    failing = isinstance(answer, dict) and answer.get("status") == "failing"
    return response.status_code == 503 and failing


def _typed(obj: Any, fields: dict[str, type]) -> bool:
    """``obj`` is a JSON object whose ``fields`` hold those types (a boolean is no integer)."""
    return isinstance(obj, dict) and all(
        isinstance(obj.get(k), kind) and (kind is bool or not isinstance(obj.get(k), bool))
        for k, kind in fields.items()
    )


def _audit_entry(entry: Any) -> bool:
    allowed = entry.get("allowed") if isinstance(entry, dict) else None
    return (
        _typed(entry, _AUDIT_ENTRY)
        and 0 <= entry["timestamp"] <= _LAST_TIMESTAMP
        and (allowed is None or isinstance(allowed, bool))
    )


def _ledger_hashes(raw: object) -> LedgerHashes:
    if not isinstance(raw, dict) or sorted(raw) != ["h1", "h3", "pixel_digest"]:
        raise IntegrityError("bundle field 'record' must hold h1, h3 and pixel_digest")
    try:
        values = {k: bytes.fromhex(str(v)) for k, v in raw.items()}
    except ValueError:
        raise IntegrityError("bundle ledger hashes are not hexadecimal") from None
    if any(len(v) != 32 or raw[k] != v.hex() for k, v in values.items()):
        raise IntegrityError("bundle ledger hashes must be 64 lowercase hex digits")
    return LedgerHashes(values["h1"], values["h3"], values["pixel_digest"])


def error_from_response(response: httpx.Response) -> ScanSealError:
    """The ScanSeal error a gateway reported, rebuilt on this side with its one-line reason."""
    try:
        body = parse_value(response.content, "error answer", max_size=_MAX_ERROR)
        name, reason = str(body["error"]), str(body["reason"])
    except (ScanSealError, KeyError, TypeError):
        return GatewayUnavailable(f"gateway answered HTTP {response.status_code}")
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, ScanSealError):
        return kind(reason)
    return GatewayUnavailable(f"gateway answered HTTP {response.status_code}: {reason}")
