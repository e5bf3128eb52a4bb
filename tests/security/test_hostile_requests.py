"""Hostile requests against a real `scanseal serve` child process: refused, answered, still serving.

The gateway died of a SIGSEGV on one unauthenticated fetch whose request header held 100,000
nested `[`; other inputs reached a plain-text 500 (a one-letter record, whitespace inside a
signature, some grant bodies). Each attack here must be answered with a 4xx and a JSON error
line, never reach the gateway's last-resort handler (a JSON 500 naming a defect), leave the
gateway serving, and, for fetches, be on the ledger as docs/PROTOCOL.md §2 says.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from gateway_harness import GatewayProcess, World, denied_counts, make_world, served
from scanseal.client import GatewayClient
from scanseal.crypto import envelope
from scanseal.protocol.signed import REQUEST_HEADER, SIGNATURE_HEADER
from scanseal.protocol.wire import unpack
from scanseal.transfer.grants import Grant, make_grant

CT = Path(str(get_testdata_file("CT_small.dcm")))
ABSENT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
BOMB = 100_000
REFUSALS = (400, 403, 404, 409, 422, 431)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("hostile")
    return make_world(root, ["ito", "lee", "novak"], ["mallory"], mode="batched")


@pytest.fixture(scope="module")
def gateway(world: World) -> Iterator[GatewayProcess]:
    yield from served(world)
    log = world.home.joinpath("gateway.log").read_text("utf-8", "replace")
    assert "Traceback" not in log, log[-3000:]  # no hostile input reached a defect


@pytest.fixture(scope="module")
def record(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        answer = ito.send(CT, [people["lee"].card], tmp_path_factory.mktemp("sent"))
    return str(answer["manifest_cid"])


def client(gateway: GatewayProcess, name: str) -> GatewayClient:
    return GatewayClient(gateway.url, gateway.world.people[name])


def refused(answer: httpx.Response, status: int | None = None) -> dict[str, str]:
    """The JSON error of a refusal; never the last-resort handler's."""
    assert answer.status_code in REFUSALS, (answer.status_code, answer.text[:300])
    if status is not None:
        assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"].startswith("application/json"), answer.text[:300]
    body = answer.json()
    assert body["error"] != "InternalError", body
    return dict(body)


def still_serving(gateway: GatewayProcess, record: str, tmp_path: Path) -> None:
    assert gateway.process is not None
    assert gateway.process.poll() is None
    with client(gateway, "lee") as lee:
        assert lee.fetch(record, tmp_path / "again.dcm").path.read_bytes() == CT.read_bytes()


def trail(gateway: GatewayProcess, record: str) -> dict[str, int]:
    with client(gateway, "ito") as ito:
        return denied_counts(ito.audit(record))


def raw_http(gateway: GatewayProcess, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is on a fresh connection; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_nesting_bomb_in_the_request_header(
    gateway: GatewayProcess, record: str, tmp_path: Path
) -> None:
    """The crash as reported: 100,000 `[` then `]`, base64, as X-ScanSeal-Request."""
    bomb = base64.urlsafe_b64encode(b"[" * BOMB + b"]" * BOMB).decode()
    headers = {REQUEST_HEADER: bomb, SIGNATURE_HEADER: "0x" + "1b" * 65}
    answer = httpx.get(f"{gateway.url}/v1/records/{record}", headers=headers, timeout=30)
    assert "headers exceed" in refused(answer, 431)["reason"]
    still_serving(gateway, record, tmp_path)
    before = trail(gateway, record).get("other", 0)
    shallow = base64.urlsafe_b64encode(b"[" * 40 + b"]" * 40).decode()  # under the head cap
    answer = httpx.get(
        f"{gateway.url}/v1/records/{record}", headers={**headers, REQUEST_HEADER: shallow}
    )
    assert "nests deeper" in refused(answer, 400)["reason"]
    assert trail(gateway, record).get("other", 0) == before + 1
    still_serving(gateway, record, tmp_path)


@pytest.mark.parametrize(
    ("route", "problem"), [("revocations", "nests deeper"), ("grants", "larger than 65536")]
)
def test_nesting_bomb_in_a_signed_body(
    gateway: GatewayProcess, record: str, tmp_path: Path, route: str, problem: str
) -> None:
    """The same document as a body, signed by the record's owner: it reaches the JSON reader
    (a grant object's own size bound, 64 KiB, refuses it first)."""
    body = b"[" * BOMB + b"]" * BOMB
    with client(gateway, "ito") as ito:
        headers = ito.signed(route[:-1].replace("revocation", "revoke"), record, body)
    answer = httpx.post(f"{gateway.url}/v1/records/{record}/{route}", headers=headers, content=body)
    assert problem in refused(answer, 400)["reason"]
    still_serving(gateway, record, tmp_path)


def test_malformed_signatures_are_refused_and_logged(gateway: GatewayProcess, record: str) -> None:
    digits = "1b" * 65
    signatures = [
        f"0x{digits[:64]}  {digits[66:]}",  # whitespace inside: was an IndexError, unlogged
        f"0x{digits[:64]}\t\t{digits[66:]}",
        f"0x {digits[1:]}",
        "0x" + "zz" * 65,
        "0x" + digits[:-2],
        "0x" + digits + "00",
        "0x" + "00" * 65,
        digits + "00",
        "",
    ]
    before = trail(gateway, record).get("bad-signature", 0)
    with client(gateway, "lee") as lee, httpx.Client(base_url=gateway.url, timeout=30) as http:
        for signature in signatures:
            headers = {**lee.signed("fetch", record), SIGNATURE_HEADER: signature}
            answer = http.get(f"/v1/records/{record}", headers=headers)
            assert refused(answer, 403)["error"] == "AccessDenied"
    assert trail(gateway, record).get("bad-signature", 0) == before + len(signatures)


def test_request_header_must_be_canonical_base64url(gateway: GatewayProcess, record: str) -> None:
    before = trail(gateway, record).get("other", 0)
    with client(gateway, "lee") as lee, httpx.Client(base_url=gateway.url, timeout=30) as http:
        variants = []
        for make in (
            lambda v: v + "AAAA",
            lambda v: v.rstrip("="),
            lambda v: v[:8] + "." + v[8:],  # junk the lenient decoder skipped
            lambda v: v.replace("-", "+").replace("_", "/") + "!",
        ):
            headers = lee.signed("fetch", record)
            changed = make(headers[REQUEST_HEADER])
            if changed != headers[REQUEST_HEADER]:
                variants.append({**headers, REQUEST_HEADER: changed})
        for headers in variants:
            refused(http.get(f"/v1/records/{record}", headers=headers), 400)
    assert trail(gateway, record).get("other", 0) == before + len(variants)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/records/b"),
        ("GET", "/v1/records/b/verify"),
        ("GET", "/v1/records/z/audit"),
        ("POST", "/v1/records/b/grants"),
        ("POST", "/v1/records/u/revocations"),
        ("GET", "/v1/records/" + "b" * 3000),
        ("GET", "/v1/records/" + "b" * 3000 + "/verify"),
    ],
)
def test_routes_with_a_record_that_is_no_cid(gateway: GatewayProcess, method: str, path: str):
    answer = httpx.request(method, gateway.url + path, timeout=30)
    assert refused(answer, 400)["error"] == "InvalidInput"


def _grant(gateway: GatewayProcess, of: str, grantee: str, **fields: object) -> Grant:
    """A grant by ito, the owner, for ``grantee``: valid unless ``fields`` change it (re-signed)."""
    people = gateway.world.people
    owner = people["ito"]
    with client(gateway, "ito") as ito:
        _meta, payload = unpack(ito.fetch_bundle(of))
    header = envelope.read_header(io.BytesIO(payload))
    file_key = envelope.unlock(header, owner.transport_keys.values())
    issued = make_grant(of, header, file_key, owner, people[grantee].card, int(time.time()))
    if fields:
        issued = dataclasses.replace(issued, **fields)  # type: ignore[arg-type]
        issued = dataclasses.replace(issued, signature=owner.sign(issued.signed_bytes()))
    return issued


def _post_grant(gateway: GatewayProcess, record: str, body: bytes, by: str = "ito"):
    with client(gateway, by) as who:
        headers = {**who.signed("grant", record, body), "Content-Type": "application/json"}
    return httpx.post(
        f"{gateway.url}/v1/records/{record}/grants", headers=headers, content=body, timeout=60
    )


def test_hostile_grant_bodies(gateway: GatewayProcess, record: str, tmp_path: Path) -> None:
    valid = _grant(gateway, record, "novak")
    good = json.loads(valid.to_bytes())

    def mutated(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    bodies = {
        "empty": b"",
        "not JSON": b"grant, please",
        "array": b"[]",
        "null": b"null",
        "not UTF-8": b'{"record": "\xff"}',
        "lone surrogate": mutated(owner="\\ud800").replace(b"\\\\ud800", b"\\ud800"),
        "duplicate key": valid.to_bytes()[:-1] + b',"record":"x"}',
        "NaN": mutated(issued_at=float("nan")),
        "unknown field": mutated(extra=1),
        "missing field": json.dumps({k: v for k, v in good.items() if k != "header"}).encode(),
        "issued_at a string": mutated(issued_at="now"),
        "issued_at a boolean": mutated(issued_at=True),
        "record a number": mutated(record=7),
        "header not base64": mutated(header="***"),
        "header empty": mutated(header=""),
        "header huge": mutated(header=base64.b64encode(b"\0" * 200_000).decode()),
        "card hash short": mutated(grantee_card_sha256="ab"),
        "owner not an address": mutated(owner="nobody"),
        "grantee not an address": mutated(grantee="0x123"),
        "signature garbage": mutated(signature="0x" + "f" * 130),
        "signature tampered": mutated(issued_at=good["issued_at"] + 1),
        "unregistered grantee": _grant(gateway, record, "mallory").to_bytes(),
        "another record": _grant(gateway, record, "novak", record=ABSENT).to_bytes(),
        "another owner named": _grant(
            gateway, record, "novak", owner=gateway.world.people["lee"].address
        ).to_bytes(),
        "issued_at enormous": _grant(gateway, record, "mallory", issued_at=10**400).to_bytes(),
        "body over 1 MiB": b" " * (1024 * 1024 + 1),
    }
    for name, body in bodies.items():
        answer = _post_grant(gateway, record, body)
        assert answer.status_code in REFUSALS, (name, answer.status_code, answer.text[:300])
        refused(answer)
    refused(_post_grant(gateway, record, valid.to_bytes(), by="lee"), 403)  # not the owner
    refused(_post_grant(gateway, ABSENT, valid.to_bytes()), 404)
    # the valid grant, twice, around a revocation: each state answers, none with a 500
    with client(gateway, "ito") as ito:
        for _round in range(2):
            assert _post_grant(gateway, record, valid.to_bytes()).status_code == 200
            assert _post_grant(gateway, record, valid.to_bytes()).status_code == 200
            ito.revoke(record, gateway.world.people["novak"].address)
    still_serving(gateway, record, tmp_path)


def test_request_head_is_capped(gateway: GatewayProcess, record: str, tmp_path: Path) -> None:
    """httptools buffered headers without bound (8 MiB parsed); 64 KiB now, as they arrive."""
    pad = b"x" * (100 * 1024)
    request = b"GET /v1/health HTTP/1.1\r\nhost: t\r\nx-pad: " + pad + b"\r\n\r\n"
    status, body = raw_http(gateway, request)
    assert status == 431
    assert json.loads(body)["error"] == "InvalidInput"
    many = b"".join(b"x-h%d: %s\r\n" % (i, b"y" * 1000) for i in range(100))
    status, _ = raw_http(gateway, b"GET /v1/health HTTP/1.1\r\nhost: t\r\n" + many + b"\r\n")
    assert status == 431
    fits = b"x-pad: " + b"x" * (60 * 1024) + b"\r\n"
    # a route answered on the event loop: raw_http half-closes its side after the request, and
    # uvicorn closes a connection at the client's EOF, so an answer that waits for a worker
    # thread (/v1/health's probes) would not be sent
    request = b"GET /openapi.json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n" + fits + b"\r\n"
    assert raw_http(gateway, request)[0] == 200
    still_serving(gateway, record, tmp_path)


def test_chunked_body_is_capped_while_it_streams(gateway: GatewayProcess, record: str) -> None:
    """Starlette read a chunked body whole before the cap applied: the answer must come after
    about 1 MiB of a grant body, while the client is still sending (it would send 64 MiB)."""
    head = (
        f"POST /v1/records/{record}/grants HTTP/1.1\r\nhost: t\r\n"
        "transfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head)
        while sent < 64 * 1024 * 1024 and not answer:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0.01)[0]:
                answer = sock.recv(65536)
        while b"}" not in answer and (chunk := sock.recv(65536)):  # the rest of the answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"exceeds 1048576 bytes" in answer
    assert sent < 16 * 1024 * 1024


def test_hostile_revocation_bodies(gateway: GatewayProcess, record: str) -> None:
    people = gateway.world.people
    bodies = [
        b"",
        b"[]",
        b'{"grantee": 5}',
        b'{"grantee": "0x123"}',
        b'{"grantee": "\\ud800"}',
        b'{"grantee": "x", "grantee": "y"}',
        json.dumps({"grantee": people["mallory"].address}).encode(),  # never granted
    ]
    with client(gateway, "ito") as ito:
        for body in bodies:
            headers = {**ito.signed("revoke", record, body), "Content-Type": "application/json"}
            answer = httpx.post(
                f"{gateway.url}/v1/records/{record}/revocations", headers=headers, content=body
            )
            if answer.status_code != 200:  # revoking someone without access may be a no-op
                refused(answer)
