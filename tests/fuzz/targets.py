"""The fuzz targets: every parser of outside input, each fed mutations of real seed inputs.

Seeds are made the way ScanSeal makes them: images from pydicom's test data and generated
PNG/JPEG, envelopes sealed for real identities, a manifest and a bundle from an upload to and a
fetch from a real gateway (embedded chain and block store in a temporary directory), identity
cards of generated identities, and a full scanseal.toml. ``TARGETS`` lists them in order.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coincurve import PrivateKey
from pydicom.data import get_testdata_file

from corpus import make_jpeg, make_png
from fuzz._harness import Failure, Mutator, Target
from gateway_harness import PASSPHRASE, World, make_world
from scanseal.client import GatewayClient, open_bundle
from scanseal.crypto import envelope
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.crypto.stanzas import RECIPIENT_KINDS
from scanseal.dicom.config import DicomConfig
from scanseal.errors import ScanSealError
from scanseal.ingest import preprocess, read_image, read_image_bytes, validate
from scanseal.integrity.pixels import pixel_digest
from scanseal.ledger import LedgerConfig
from scanseal.protocol import wire
from scanseal.protocol.signed import (
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    Domain,
    Request,
    typed_digest,
)
from scanseal.service import GatewayConfig
from scanseal.storage import cid_of, load_config
from scanseal.transfer.grants import make_grant
from scanseal.transfer.manifest import Manifest
from scanseal.transfer.upload import seal_for_upload

with warnings.catch_warnings():  # Starlette would rather test through httpx2, not installed here
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

DICOM_SEEDS = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm",
    "SC_rgb_small_odd_jpeg.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
    "image_dfl.dcm", "MR_small_bigendian.dcm", "SC_rgb_small_odd.dcm",
)  # fmt: skip
"""Small files of pydicom's test data, one per transfer syntax family ScanSeal decodes."""
UPLOAD_IMAGE = "MR_small.dcm"
BASE = "http://testserver"

# Tags whose values steer a DICOM reader (group, element little-endian): rows, columns, bits
# allocated/stored, samples, frames, planar configuration, pixel representation, pixel data.
_DICOM_TAGS = tuple(
    bytes.fromhex(t)
    for t in (
        "28001000", "28001100", "28000001", "28000101", "28000200", "28000800", "28000600",
        "28000301", "e07f1000", "02001000", "fffee000",
    )
)  # fmt: skip


class Ingest(Target):
    """Ingest as sealing uses it: validate (header, every frame), the pixel digest, the
    detector's preprocessing."""

    name = "ingest"
    test_inputs = 1500

    def setup(self, workdir: Path) -> None:
        self.seeds = [Path(str(get_testdata_file(n))).read_bytes() for n in DICOM_SEEDS]
        for maker, suffix in ((make_png, "png"), (make_jpeg, "jpg")):
            self.seeds.append(maker(workdir / f"seed.{suffix}").read_bytes())
        self.seeds.append(make_png(workdir / "seed16.png", bits=16, rgb=True).read_bytes())
        self.path = workdir / "input"

    def generate(self, mutator: Mutator) -> bytes:
        r = mutator.rng
        seed = r.choice(self.seeds)
        if seed.startswith(b"\x89PNG") or seed[:2] == b"\xff\xd8" or r.random() < 0.5:
            return mutator.bytes_(seed, self.seeds)
        return _dicom_value_mutation(mutator, seed)

    def run(self, case: bytes) -> None:
        self.path.write_bytes(case)
        _same_in_memory(self.path, case)
        validate(self.path)
        pixel_digest(self.path)
        preprocess(self.path)


def _same_in_memory(path: Path, case: bytes) -> None:
    """A DICOM input ingested from memory (as the SCP and STOW-RS receive it) is read to the
    file's metadata and pixel digest, or refused as the file is, with the same error class (so
    the same DICOM status). The wording may differ for a value cut short by the end of the
    input: a file leaves large values on disk, where ingest finds them truncated, while bytes in
    memory are read whole and pydicom stops at the end (a Failure otherwise)."""
    if case[128:132] != b"DICM":
        return
    outcomes = []
    for read in (lambda: read_image(path), lambda: read_image_bytes(case, path.name)):
        try:
            image = read()
            outcomes.append((image.metadata, _digest_or_refusal(image)))
        except ScanSealError as error:
            outcomes.append((None, type(error).__name__))
    if outcomes[0] != outcomes[1]:
        raise Failure(f"ingest from memory differs from the file's: {outcomes[1]} != {outcomes[0]}")


def _digest_or_refusal(image: Any) -> bytes | str:
    try:
        return pixel_digest(image)
    except ScanSealError as error:
        return type(error).__name__  # a codec's reason may name an object's address


def _dicom_value_mutation(mutator: Mutator, data: bytes) -> bytes:
    """Overwrite the value (or length) of one element that steers the reader."""
    r = mutator.rng
    buf = bytearray(data)
    for _ in range(r.randint(1, 3)):
        tag = r.choice(_DICOM_TAGS)
        at = buf.find(tag)
        if at < 0:
            continue
        offset = at + 4 + r.choice((0, 2, 4, 6, 8))  # VR, length or value (explicit/implicit)
        width = r.choice((1, 2, 4))
        value = r.choice((0, 1, 2, 3, 7, 8, 9, 12, 15, 16, 17, 32, 255, 0xFFFF, 0xFFFFFFFF))
        buf[offset : offset + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return bytes(buf)


class Envelopes(Target):
    """The envelope reader and opener, with the recipient's keys (all three key kinds)."""

    name = "envelope"
    test_inputs = 3000

    def setup(self, workdir: Path) -> None:
        self.me = Identity.generate("fuzz-recipient")
        other = Identity.generate("fuzz-other")
        cards = (self.me.card, other.card)
        self.seeds = []
        for kinds in ([k] for k in RECIPIENT_KINDS):
            recipients = [c.recipient(k) for c in cards for k in kinds]
            self.seeds.append(_seal(b"fuzz payload " * 40, recipients, segment_size=256))
        every = [self.me.card.recipient(k) for k in RECIPIENT_KINDS]
        self.seeds.append(_seal(b"", every))
        self.seeds.append(_seal(os.urandom(3000), every[:1], segment_size=1024))
        self.keys = list(self.me.transport_keys.values())

    def generate(self, mutator: Mutator) -> bytes:
        r = mutator.rng
        seed = r.choice(self.seeds)
        if r.random() < 0.3:  # one header field set to an interesting value
            buf = bytearray(seed)
            at = r.randrange(min(len(buf), 400))
            buf[at : at + 2] = r.choice((0, 1, 0xFF, 0xFFFF, 0x100)).to_bytes(2, "big")
            return bytes(buf)
        return mutator.bytes_(seed, self.seeds)

    def run(self, case: bytes) -> None:
        envelope.open_envelope(io.BytesIO(case), io.BytesIO(), self.keys)


def _seal(payload: bytes, recipients: list[Any], segment_size: int = 64 * 1024) -> bytes:
    out = io.BytesIO()
    envelope.seal(io.BytesIO(payload), out, recipients, segment_size=segment_size)
    return out.getvalue()


class Manifests(Target):
    """The manifest reader and its signature check (seeds: the manifest an upload sends)."""

    name = "manifest"
    test_inputs = 3000

    def setup(self, workdir: Path) -> None:
        owner, reader = Identity.generate("ito"), Identity.generate("lee")
        image = Path(str(get_testdata_file(UPLOAD_IMAGE)))
        sealed = seal_for_upload(image, [reader.card], owner, workdir)
        canonical = sealed.manifest_path.read_bytes()
        self.seeds = [canonical, json.dumps(json.loads(canonical), indent=2).encode()]

    def generate(self, mutator: Mutator) -> bytes:
        return mutator.json_doc(self.seeds)

    def run(self, case: bytes) -> None:
        manifest = Manifest.from_json(case)
        manifest.verify_signature()
        Manifest.from_json(manifest.to_json())


class Cards(Target):
    """Identity cards as read from a file (all three recipient key kinds)."""

    name = "card"
    test_inputs = 3000

    def setup(self, workdir: Path) -> None:
        self.seeds = [Identity.generate(n).card.to_json().encode() for n in ("ito", "lee.b")]
        self.path = workdir / "card.json"

    def generate(self, mutator: Mutator) -> bytes:
        return mutator.json_doc(self.seeds)

    def run(self, case: bytes) -> None:
        self.path.write_bytes(case)
        card = IdentityCard.load(self.path)
        IdentityCard.from_json(card.to_json())


_CONFIG_SEED = """\
[gateway]
identity = "gateway"
host = "127.0.0.1"
port = 8470
members = "members"
auditors = ["0x52908400098527886E0F7030069857D2E4169EE7"]
max_lifetime = 300
clock_skew = 30
tick_seconds = 0.5

[ledger]
backend = "jsonrpc"
url = "http://127.0.0.1:8545"
mode = "batched"
batch_size = 512
batch_seconds = 1.5
durable = true
timeout = 30

[storage]
backend = "kubo"
nodes = ["http://127.0.0.1:5001", "http://127.0.0.1:5002"]
min_replicas = 2
timeout = 10.0
retries = 2

[dicom]
enabled = true
stow = true
ae_title = "SCANSEAL"
port = 11112
recipients = ["lee.card.json"]
routes = { CT1 = ["ito.card.json"] }
"""


class Configs(Target):
    """scanseal.toml as each loader reads it: gateway, ledger, storage and DICOM."""

    name = "config"
    test_inputs = 2000

    def setup(self, workdir: Path) -> None:
        self.seeds = [_CONFIG_SEED.encode()]
        self.path = workdir / "scanseal.toml"

    def generate(self, mutator: Mutator) -> bytes:
        return mutator.toml_doc(self.seeds)

    def run(self, case: bytes) -> None:
        self.path.write_bytes(case)
        for load in (
            lambda: GatewayConfig.load(self.path, env={}),
            lambda: LedgerConfig.load(self.path, env={}),
            lambda: load_config(self.path, env={}),
            lambda: DicomConfig.load(self.path),
        ):
            try:
                load()
            except ScanSealError:
                continue


# --- a real gateway in this process -------------------------------------------------------------


@dataclass
class GatewayWorld:
    """A gateway (embedded chain and store) under ``root``, its app (with STOW-RS when asked),
    one uploaded record and the real bodies around it: the upload, the owner's bundle, a grant."""

    world: World
    gateway: Any
    http: TestClient
    record: str
    upload_body: bytes
    grant_body: bytes
    bundle: bytes
    home_before: str | None

    @classmethod
    def open(cls, root: Path, *, stow: bool = False) -> GatewayWorld:
        from scanseal.service.app import create_app
        from scanseal.service.server import open_gateway

        world = make_world(root, ["ito", "lee", "novak"], ["mallory"], mode="batched")
        home_before = os.environ.get("SCANSEAL_HOME")
        os.environ["SCANSEAL_HOME"] = str(world.home)
        gateway = open_gateway(world.config, PASSPHRASE)
        app = create_app(gateway, [_stow(gateway, world)] if stow else [])
        http = TestClient(app, base_url=BASE).__enter__()
        people = world.people
        ito = GatewayClient(BASE, people["ito"], http=http)
        image = Path(str(get_testdata_file(UPLOAD_IMAGE)))
        scratch = root / "upload"
        scratch.mkdir()
        sealed = seal_for_upload(image, [people["lee"].card], people["ito"], scratch)
        manifest = sealed.manifest_path.read_text("utf-8")
        body = wire.pack({"manifest": manifest}, sealed.envelope.read_bytes())
        record = str(ito.upload(sealed)["manifest_cid"])
        bundle = GatewayClient(BASE, people["lee"], http=http).fetch_bundle(record)
        _meta, payload = wire.unpack(bundle)
        header = envelope.read_header(io.BytesIO(payload))
        key = envelope.unlock(header, people["lee"].transport_keys.values())
        grant = make_grant(record, header, key, people["ito"], people["novak"].card, 0)
        return cls(world, gateway, http, record, body, grant.to_bytes(), bundle, home_before)

    def close(self) -> None:
        self.http.__exit__(None, None, None)
        self.gateway.close()
        if self.home_before is None:
            os.environ.pop("SCANSEAL_HOME", None)
        else:
            os.environ["SCANSEAL_HOME"] = self.home_before


def _stow(gateway: Any, world: World) -> Any:
    """STOW-RS mounted on the app as ``scanseal serve`` mounts it, over a receiver of its own."""
    from scanseal.dicom.index import DicomIndex
    from scanseal.dicom.scp import Receiver
    from scanseal.dicom.stow import add_routes

    config = DicomConfig(stow=True, recipients=(world.cards["lee"],))
    receiver = Receiver(gateway, gateway.identity, config, DicomIndex(world.home / "dicom.sqlite3"))
    return lambda app, run, body: add_routes(app, receiver, run, body)


class Bundles(Target):
    """The client's check of a fetch answer (open_bundle): framing, manifest, grant, envelope."""

    name = "bundle"
    test_inputs = 2000

    def setup(self, workdir: Path) -> None:
        world = GatewayWorld.open(workdir / "gw")
        try:
            self.record = world.record
            self.lee = world.world.people["lee"]
            self.meta, self.payload = wire.unpack(world.bundle)
            self.seeds = [world.bundle]
            self.grant = world.grant_body.decode()
        finally:
            world.close()
        self.output = workdir / "opened.dcm"

    def generate(self, mutator: Mutator) -> bytes:
        r = mutator.rng
        choice = r.randrange(4)
        if choice == 0:
            return mutator.bytes_(self.seeds[0])
        meta = dict(self.meta)
        if choice == 1:  # the metadata as JSON, the payload intact
            mutated = mutator.json_value(meta)
            text = mutator.json_text(mutated)
            return wire.MAGIC + len(text).to_bytes(4, "big") + text + self.payload
        if choice == 2:  # one field's document (manifest or grant) mutated, framing canonical
            key = r.choice(("manifest", "grant"))
            seed = meta[key] if isinstance(meta.get(key), str) else self.grant
            doc = mutator.json_doc([seed.encode()])
            meta[key] = doc.decode("utf-8", "surrogateescape")
            return _pack(meta, self.payload)
        return _pack(meta, mutator.bytes_(self.payload))  # the envelope

    def run(self, case: bytes) -> None:
        # Half the inputs are checked against the CID of the manifest they carry, so a mutated
        # manifest gets past the CID check and into the manifest reader.
        record = self.record
        if hashlib.sha256(case).digest()[0] & 1:
            record = _carried_record(case) or record
        try:
            open_bundle(case, record, self.lee, self.output)
        except ScanSealError:
            if self.output.exists():
                raise Failure(f"refused bundle left plaintext at {self.output}") from None
            raise
        self.output.unlink()


def _pack(meta: dict[str, Any], payload: bytes) -> bytes:
    try:
        return wire.pack(meta, payload)
    except UnicodeEncodeError:  # a lone surrogate: frame it by hand, the reader must refuse it
        text = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        return wire.MAGIC + len(text).to_bytes(4, "big") + text + payload


def _carried_record(bundle: bytes) -> str | None:
    try:  # the bundle reader's own framing and strict JSON: plain json.loads would recurse
        manifest = wire.unpack(bundle)[0]["manifest"]  # through deep nesting and overflow
        return cid_of(io.BytesIO(manifest.encode("utf-8")))
    except Exception:
        return None


# --- every HTTP route ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


STATE_INPUTS = 2000
"""Inputs one gateway answers before the next starts afresh. An audit trail costs more than
linear time in the record's entries (each batched entry is decoded and proved under the ledger
lock), so after about 2,300 inputs one audit took over 10 s and ended the run; raise this once
the audit trail is bounded."""
ROUTES = ("health", "metrics", "openapi", "upload", "fetch", "grant", "revoke", "audit", "inbox",
          "verify", "stow")  # fmt: skip


class Http(Target):
    """Every route of the gateway's API in process, signed by real identities, then mutated.

    Each input picks a route, a signer (owner, grantee, a stranger), a record, a body (the real
    upload bundle, grant or revocation, mutated), signs a fresh request for it (mostly right,
    sometimes for another body, action or time) and then may mutate the headers, path or query.
    A 5xx answer, or an exception out of the application, is a failure.
    """

    name = "http"
    stateful = True
    test_inputs = 1500

    def setup(self, workdir: Path) -> None:
        self.workdir, self.generated = workdir, 0
        self._open(workdir / "gw")

    def _open(self, root: Path) -> None:
        self.gw = GatewayWorld.open(root, stow=True)
        info = self.gw.gateway.health()
        self.domain = Domain(int(info["chain_id"]), info["contract"], info["gateway"])
        people = self.gw.world.people
        self.signers = [people[n] for n in ("ito", "lee", "novak", "mallory")]
        self.keys = {p.address: PrivateKey(bytes(p.account.key)) for p in self.signers}
        dicom = Path(str(get_testdata_file("SC_rgb_small_odd.dcm"))).read_bytes()
        self.stow_body = _multipart([dicom])
        self.bodies = {
            "upload": self.gw.upload_body,
            "grant": self.gw.grant_body,
            "revoke": json.dumps({"grantee": people["novak"].address}).encode(),
            "stow": self.stow_body,
        }

    def teardown(self) -> None:
        self.gw.close()

    def generate(self, mutator: Mutator) -> HttpCase:
        if self.generated and self.generated % STATE_INPUTS == 0:  # a fresh gateway: STATE_INPUTS
            self.gw.close()
            self._open(self.workdir / f"gw{self.generated // STATE_INPUTS}")
        self.generated += 1
        r = mutator.rng
        route = r.choice(ROUTES)
        record = self.gw.record if r.random() < 0.7 else mutator.text(self.gw.record)
        body = self.bodies.get(route, b"")
        # STOW bodies are nearly always mutated: each intact one seals and uploads an instance.
        if body and r.random() < (0.97 if route == "stow" else 0.7):
            body = self._mutate_body(mutator, route, body)
        method, path, action, signed_record = _route(route, record, r.randrange(5))
        # A request document carries only what UTF-8 can spell; the path keeps the raw record.
        signed_record = signed_record.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        headers: list[tuple[bytes, bytes]] = []
        if action is not None and r.random() < 0.9:
            headers.extend(self._sign(mutator, action, signed_record, body))
        if route == "stow":
            headers.append((b"content-type", _STOW_TYPE.encode()))
        if r.random() < 0.3:
            headers = _mutate_headers(mutator, headers)
        if r.random() < 0.15:
            path = _mutate_path(mutator, path)
        return HttpCase(method, path, tuple(headers), body)

    def _mutate_body(self, mutator: Mutator, route: str, body: bytes) -> bytes:
        r = mutator.rng
        if route == "upload" and r.random() < 0.5:
            meta, payload = wire.unpack(body)
            if r.random() < 0.5:
                return _pack({"manifest": mutator.json_doc([meta["manifest"].encode()]).decode(
                    "utf-8", "surrogateescape")}, payload)  # fmt: skip
            return _pack(meta, mutator.bytes_(payload))
        if route in ("grant", "revoke") and r.random() < 0.7:
            return mutator.json_doc([body])
        return mutator.bytes_(body)

    def _sign(self, mutator: Mutator, action: str, record: str, body: bytes) -> Iterator[Any]:
        r = mutator.rng
        signer = r.choice(self.signers)
        now = int(time.time())
        issued = now if r.random() < 0.9 else now + r.choice((-3600, -100, 100, 3600, 2**40))
        lifetime = 60 if r.random() < 0.9 else r.choice((0, -1, 1, 10**6))
        if r.random() < 0.1:
            action = r.choice(("upload", "fetch", "grant", "revoke", "audit", "inbox", "x"))
        request = Request(
            action=action,
            record=record,
            requester=signer.address,
            gateway=self.domain.gateway,
            nonce=r.randbytes(32),
            issued_at=max(0, issued),
            expires_at=max(0, issued + lifetime),
            body_hash=hashlib.sha256(body if r.random() < 0.9 else b"other").digest(),
        )
        encoded = request.to_json()
        if r.random() < 0.1:  # the request document itself, mutated (no longer what was signed)
            encoded = mutator.json_doc([encoded])
        signature = self.keys[signer.address].sign_recoverable(
            typed_digest(self.domain, request), hasher=None
        )
        sig = "0x" + (signature[:64] + bytes([signature[64] + 27])).hex()
        yield REQUEST_HEADER.lower().encode(), base64.urlsafe_b64encode(encoded)
        yield SIGNATURE_HEADER.lower().encode(), sig.encode()

    def run(self, case: HttpCase) -> None:
        answer = self.gw.http.request(
            case.method, case.path, headers=list(case.headers), content=case.body or None
        )
        if answer.status_code >= 500:
            raise Failure(f"HTTP {answer.status_code} for {case.method} {case.path}: "
                          f"{answer.content[:300]!r}")  # fmt: skip

    def dump(self, case: HttpCase) -> bytes:
        head = f"{case.method} {case.path}\n".encode()
        lines = b"".join(k + b": " + v[:2000] + b"\n" for k, v in case.headers)
        return head + lines + b"\n" + case.body[:2000]


_STOW_BOUNDARY = "fuzzboundary"
_STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={_STOW_BOUNDARY}'


def _multipart(parts: list[bytes]) -> bytes:
    out = b""
    for part in parts:
        out += f"--{_STOW_BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += part + b"\r\n"
    return out + f"--{_STOW_BOUNDARY}--\r\n".encode()


def _route(route: str, record: str, after: int) -> tuple[str, str, str | None, str]:
    """Method, path, the action a client signs (None: unsigned route) and the signed record."""
    quoted = _quote(record)
    return {
        "health": ("GET", "/v1/health", None, ""),
        "metrics": ("GET", "/metrics", None, ""),
        "openapi": ("GET", "/openapi.json", None, ""),
        "upload": ("POST", "/v1/records", "upload", record),
        "fetch": ("GET", f"/v1/records/{quoted}", "fetch", record),
        "grant": ("POST", f"/v1/records/{quoted}/grants", "grant", record),
        "revoke": ("POST", f"/v1/records/{quoted}/revocations", "revoke", record),
        "audit": ("GET", f"/v1/records/{quoted}/audit", "audit", record),
        "inbox": ("GET", f"/v1/inbox?after={after}", "inbox", str(after)),
        "verify": ("GET", f"/v1/records/{quoted}/verify", None, ""),
        "stow": ("POST", "/dicom-web/studies", None, ""),
    }[route]


def _quote(text: str) -> str:
    """Percent-encoding of any string, lone surrogates too (as their UTF-8-like bytes)."""
    return urllib.parse.quote(text, safe="", errors="surrogatepass")


def _header_text(mutator: Mutator, value: bytes) -> bytes:
    """A mutated header value that HTTP can carry (no CR, LF or NUL)."""
    raw = mutator.text(value.decode("latin-1")).encode("utf-8", "surrogatepass")
    return bytes(b for b in raw if b not in b"\r\n\x00")


def _mutate_headers(
    mutator: Mutator, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    r = mutator.rng
    names = (REQUEST_HEADER.lower().encode(), SIGNATURE_HEADER.lower().encode())
    out = list(headers)
    op = r.randrange(7)
    if op == 0 and out:  # drop one
        del out[r.randrange(len(out))]
    elif op == 1 and out:  # one value mutated
        at = r.randrange(len(out))
        out[at] = (out[at][0], _header_text(mutator, out[at][1]))
    elif op == 2 and out:  # duplicated (first or second wins?)
        out.insert(0, (out[r.randrange(len(out))][0], b"x"))
    elif op == 3:  # whitespace inside the signature, padding or the standard alphabet
        out = [
            (k, v[:66] + b"  " + v[66:] if k == names[1] else v.replace(b"-", b"+") + b"==")
            for k, v in out
        ]
    elif op == 4:  # a large header
        out.append((r.choice(names), b"A" * r.choice((4096, 65536, 256 * 1024))))
    elif op == 5:  # a content length that lies
        out.append((b"content-length", str(r.choice((0, 1, 10**12, -1))).encode()))
    else:  # the request header's document, base64 of a mutated JSON
        doc = mutator.json_doc([b'{"action":"fetch","record":"b","nonce":"00"}'])
        out.append((names[0], base64.urlsafe_b64encode(doc)))
    return out


def _mutate_path(mutator: Mutator, path: str) -> str:
    r = mutator.rng
    base, _, query = path.partition("?")
    op = r.randrange(5)
    if op == 0:
        query = "after=" + r.choice(("-1", "x", "1e3", str(2**64), "", "0&after=1", "%00"))
    elif op == 1:
        base = base + r.choice(("/", "//", "/x", "/../..", "/%2e%2e", ";x"))
    elif op == 2:
        base = "/v1/records/" + urllib.parse.quote(
            mutator.text("b"), safe="", errors="surrogatepass"
        )
    elif op == 3:
        base = base.replace("/v1/", r.choice(("/v2/", "/V1/", "//v1/", "/v1//")))
    else:
        base = "/v1/records/" + "a" * r.choice((1, 100, 10000))
    return base + ("?" + query if query else "")


# --- the client against a gateway that answers anything ------------------------------------------

CLIENT_OPS = ("health", "domain", "upload", "fetch", "grant", "revoke", "audit", "inbox", "verify")
_STATUSES = (200, 200, 200, 201, 204, 301, 400, 403, 404, 409, 422, 500, 502, 503, 599)


@dataclass(frozen=True)
class Answer:
    op: str
    status: int
    body: bytes


class Client(Target):
    """GatewayClient (as the CLI and the DICOM agent use it) against a gateway answering
    mutations of real answers: health, upload, fetch, grant, revoke, audit, inbox, verify and
    error bodies. What the callers then read (``manifest_cid``, ``grant_cid``, ``checks``, the
    audit rows, the inbox page) is read here too: a client that returns what its callers cannot
    use has not refused the answer."""

    name = "client"
    test_inputs = 1000

    def setup(self, workdir: Path) -> None:
        gw = GatewayWorld.open(workdir / "gw")
        try:
            people = gw.world.people
            self.ito, self.novak = people["ito"], people["novak"]
            self.record = gw.record
            ito = GatewayClient(BASE, self.ito, http=gw.http)
            self.real = {
                "health": json.dumps(ito.health()).encode(),
                "fetch": ito.fetch_bundle(gw.record),
                "grant": json.dumps(ito.grant(gw.record, self.novak.card)).encode(),
                "revoke": json.dumps(ito.revoke(gw.record, self.novak.address)).encode(),
                "audit": json.dumps(ito.audit(gw.record)).encode(),
                "inbox": json.dumps(
                    GatewayClient(BASE, people["lee"], http=gw.http).inbox()
                ).encode(),
                "verify": json.dumps(ito.verify(gw.record)).encode(),
                "error": b'{"error":"AccessDenied","reason":"not a recipient"}',
            }
            image = Path(str(get_testdata_file("SC_rgb_small_odd.dcm")))
            scratch = workdir / "sealed"
            scratch.mkdir()
            self.sealed = seal_for_upload(image, [people["lee"].card], self.ito, scratch)
            self.real["upload"] = json.dumps(ito.upload(self.sealed)).encode()
            self.real["domain"] = self.real["health"]
        finally:
            gw.close()
        self.output = workdir / "fetched.dcm"
        self.http = TestClient(self._app, base_url=BASE)
        self.answer = Answer("health", 200, self.real["health"])

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        """The hostile gateway: real health and owner's bundle unless they are under test."""
        if scope["type"] != "http":
            return
        path, answer = scope["path"], self.answer
        if path == "/v1/health" and answer.op not in ("health", "domain"):
            answer = Answer("health", 200, self.real["health"])
        elif scope["method"] == "GET" and path.startswith("/v1/records/") and answer.op == "grant":
            answer = Answer("fetch", 200, self.real["fetch"])
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(answer.body)),
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def generate(self, mutator: Mutator) -> Answer:
        r = mutator.rng
        op = r.choice(CLIENT_OPS)
        status = 200 if r.random() < 0.8 else r.choice(_STATUSES)
        seed = self.real[op] if status == 200 or r.random() < 0.3 else self.real["error"]
        if seed == self.real["fetch"]:
            body = mutator.bytes_(seed) if r.random() < 0.9 else seed
        else:
            body = mutator.json_doc([seed]) if r.random() < 0.95 else seed
        return Answer(op, status, body)

    def run(self, case: Answer) -> None:
        from scanseal import audit
        from scanseal.dicom.agent import inbox_page

        self.answer = case
        client = GatewayClient(BASE, self.ito, http=self.http)
        op = case.op
        if op == "health":
            client.health()
        elif op == "domain":
            client.signed("fetch", self.record)
        elif op == "upload":
            str(client.upload(self.sealed)["manifest_cid"])
        elif op == "fetch":
            self._fetch(client)
        elif op == "grant":
            str(client.grant(self.record, self.novak.card)["grant_cid"])
        elif op == "revoke":
            client.revoke(self.record, self.novak.address)
        elif op == "audit":
            audit.table_rows(audit.entries(client.audit(self.record), {}))
        elif op == "inbox":
            inbox_page(client.inbox(), 0)
        else:
            [str(check) for check in client.verify(self.record)["checks"]]

    def _fetch(self, client: GatewayClient) -> None:
        try:
            client.fetch(self.record, self.output)
        except ScanSealError:
            if self.output.exists():
                raise Failure(f"refused answer left plaintext at {self.output}") from None
            raise
        self.output.unlink()

    def dump(self, case: Answer) -> bytes:
        return f"{case.op} HTTP {case.status}\n".encode() + case.body


TARGETS: tuple[Target, ...] = (
    Ingest(), Envelopes(), Manifests(), Bundles(), Cards(), Configs(), Http(), Client(),
)  # fmt: skip


def by_name(name: str) -> Target:
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(f"no fuzz target {name!r}; there are {', '.join(t.name for t in TARGETS)}")
