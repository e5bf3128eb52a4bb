"""Real department gateways for the evaluation, and the clients that load them.

A gateway here is ``python -m scanseal serve`` as a child process on 127.0.0.1 (a free port,
TLS from a private CA, its own SCANSEAL_HOME), stopped by its PID (SIGTERM, so it anchors what
is pending, then SIGKILL if it hangs), also when a run fails. Clinicians are identities
generated in memory.
Requests are prepared (sealed, signed) before the clock starts, as each clinician's own machine
would; :func:`run_sessions` then plays one session per user concurrently, each on its own
connection, and records what every request returned and how long it took. Also here: reading
what an embedded ledger wrote (its journal of signed transactions and its batched log), and the
two-panel plots both sections draw.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import rlp
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from scanseal.crypto.identity import Identity, IdentityCard, Keystore
from scanseal.ledger import Entry
from scanseal.protocol import wire
from scanseal.protocol.signed import Domain, new_request, sign_request
from scanseal.service.tls import make_certs
from scanseal.storage import cid_of
from scanseal.transfer.local import SealedFile

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "evaluation passphrase"
SCRYPT_N = 2**10  # cheap keyfiles: the passphrase is not what is measured
LIFETIME = 300  # seconds a prepared request stays valid (the gateway's default maximum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- clinicians -----------------------------------------------------------------------------


def clinicians(names: Sequence[str]) -> list[Identity]:
    """Fresh identities (Ethereum key and transport keys) for ``names``.

    About 60 ms each on an idle core, nearly all of it the RSA-2048 key; keystore files would
    add about as much again to load, so none are written.
    """
    return [Identity.generate(name) for name in names]


# --- images -----------------------------------------------------------------------------------


def synthetic_slice(path: Path, size: int, seed: int, modality: str = "CT") -> Path:
    """A 16-bit ``size`` × ``size`` slice with CT_small's header, a body phantom and seeded
    noise: every call with another seed is another image (another H1 and pixel digest)."""
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    half = size // 2
    yy, xx = np.mgrid[-half : size - half, -half : size - half]
    radius = 0.4 * size
    body = ((xx**2 + (yy * 1.3) ** 2) < radius**2) * 1000
    lesion = ((xx - size // 8) ** 2 + yy**2 < (size // 12) ** 2) * 400
    noise = np.random.default_rng(seed).integers(0, 40, size=(size, size))
    ds.Rows, ds.Columns = size, size
    ds.Modality = modality
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"scanseal-eval-{seed}"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelData = (body + lesion + noise).astype(np.uint16).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(str(path), enforce_file_format=True)
    return path


# --- gateways ---------------------------------------------------------------------------------


@dataclass
class GatewayProcess:
    """One ``scanseal serve`` with its own home; ``url`` and ``domain`` once started."""

    name: str
    root: Path
    ledger_toml: str
    storage_toml: str = ""
    members: Sequence[IdentityCard] = ()
    process: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)
    domain: Domain | None = None

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.root / "certs" / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def write(self) -> Identity:
        """The gateway's keystore identity, members' cards and scanseal.toml."""
        gateway = Keystore(self.home / "keys", scrypt_n=SCRYPT_N).create("gateway", PASSPHRASE)
        cards = self.home / "members"
        cards.mkdir(parents=True)
        for card in self.members:
            (cards / f"{card.address}.json").write_text(card.to_json(), "utf-8")
        certs = make_certs(self.root / "certs")
        (self.home / "scanseal.toml").write_text(
            f'[gateway]\nidentity = "gateway"\nport = {self.port}\nmembers = "{cards}"\n'
            f'tls_cert = "{certs.cert}"\ntls_key = "{certs.key}"\ntick_seconds = 0.5\n'
            f"[ledger]\n{self.ledger_toml}\n{self.storage_toml}\n",
            "utf-8",
        )
        return gateway

    def start(self, timeout: float = 300.0) -> GatewayProcess:
        """Start and wait for /v1/health (enrolling many members takes a while)."""
        env = dict(os.environ, SCANSEAL_HOME=str(self.home), SCANSEAL_PASSPHRASE=PASSPHRASE)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        env.pop("SCANSEAL_LEDGER_FUNDER_KEY", None)
        with (self.root / "gateway.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scanseal", "serve", "--config",
                 str(self.home / "scanseal.toml")],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        ctx = self.ssl_context()
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                info = httpx.get(f"{self.url}/v1/health", verify=ctx, timeout=1).json()
                self.domain = Domain(int(info["chain_id"]), info["contract"], info["gateway"])
                return self
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)
        tail = (self.root / "gateway.log").read_text("utf-8", "replace")[-800:]
        self.stop()
        raise RuntimeError(f"gateway {self.name} did not start: {tail}")

    def stop(self) -> None:
        """SIGTERM by PID (the gateway anchors what is pending), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", verify=self.ssl_context(), timeout=10).text


@contextmanager
def running(gateways: Sequence[GatewayProcess]) -> Iterator[Sequence[GatewayProcess]]:
    """Start every gateway; stop all of them by PID on the way out, whatever happened."""
    try:
        for gateway in gateways:
            gateway.start()
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()


# --- prepared requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One prepared HTTP request and what a correct system answers to it."""

    kind: str  # "upload", "fetch", "denied fetch", "replay", ...
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    expect: int = 200
    record: str = ""


@dataclass
class Outcome:
    kind: str
    status: int
    expect: int
    seconds: float
    sent: int
    received: int
    ok: bool
    started: float


def upload_call(sealed: SealedFile, who: Identity, domain: Domain) -> Call:
    """An upload as ``scanseal send`` makes it: the bundle, signed over its body hash."""
    manifest = sealed.manifest_path.read_bytes()
    body = wire.pack({"manifest": manifest.decode("utf-8")}, sealed.envelope.read_bytes())
    record = cid_of(io.BytesIO(manifest))
    request = new_request(who.account, domain, "upload", record, body=body, lifetime=LIFETIME)
    headers = {**sign_request(who.account, domain, request), "Content-Type": wire.MEDIA_TYPE}
    return Call("upload", "POST", "/v1/records", headers, body, 200, record)


def fetch_call(record: str, who: Identity | Any, domain: Domain, *, expect: int = 200) -> Call:
    """A signed fetch by ``who`` (an Identity, or a bare account for strangers)."""
    account = who.account if isinstance(who, Identity) else who
    request = new_request(account, domain, "fetch", record, lifetime=LIFETIME)
    kind = "fetch" if expect == 200 else "denied fetch"
    headers = sign_request(account, domain, request)
    return Call(kind, "GET", f"/v1/records/{record}", headers, b"", expect, record)


def bundle_names(record: str, data: bytes) -> bool:
    """A fetch answer is right when it is a bundle whose manifest hashes to the record's CID."""
    try:
        meta, _payload = wire.unpack(data)
        return cid_of(io.BytesIO(str(meta["manifest"]).encode("utf-8"))) == record
    except Exception:
        return False


def run_sessions(
    url: str,
    ctx: ssl.SSLContext,
    sessions: Sequence[Sequence[Call]],
    check: Callable[[Call, httpx.Response], bool] | None = None,
) -> tuple[list[Outcome], float]:
    """Play every session concurrently (one connection each, requests in order); returns the
    outcome of every request and the wall time from the first request to the last answer."""
    import uvloop  # what uvicorn runs on; its TLS costs the shared cores far less

    check = check or _default_check
    outcomes: list[Outcome] = []

    async def session(calls: Sequence[Call]) -> None:
        async with httpx.AsyncClient(base_url=url, verify=ctx, timeout=300) as http:
            for call in calls:
                started = time.perf_counter()
                try:
                    answer = await http.request(
                        call.method, call.path, headers=call.headers, content=call.body or None
                    )
                    status, received = answer.status_code, len(answer.content)
                    ok = status == call.expect and check(call, answer)
                except httpx.HTTPError:
                    status, received, ok = 0, 0, False
                seconds = time.perf_counter() - started
                outcomes.append(
                    Outcome(call.kind, status, call.expect, seconds, len(call.body), received,
                            ok, started)
                )  # fmt: skip

    async def everyone() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(session(calls) for calls in sessions))
        return time.perf_counter() - started

    wall: float = uvloop.run(everyone())
    return outcomes, wall


def _default_check(call: Call, answer: httpx.Response) -> bool:
    if call.expect != 200:
        return True  # the status was the expected refusal
    if call.kind == "upload":
        return bool(answer.json().get("manifest_cid") == call.record)
    return bundle_names(call.record, answer.content)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean in seconds (a single sample is its own percentiles)."""
    if not seconds:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan")}
    cuts = statistics.quantiles(seconds, n=100) if len(seconds) > 1 else list(seconds) * 99
    return {"p50": cuts[49], "p95": cuts[94], "mean": statistics.fmean(seconds)}


# --- what the ledger wrote ----------------------------------------------------------------------

ARTIFACT = ROOT / "src" / "scanseal" / "ledger" / "ImageRegistry.json"


def registry_functions() -> dict[bytes, tuple[str, list[str]]]:
    """ImageRegistry's writing functions by 4-byte selector: (name, argument types)."""
    from eth_utils.abi import function_abi_to_4byte_selector

    abi = json.loads(ARTIFACT.read_text("utf-8"))["abi"]
    return {
        bytes(function_abi_to_4byte_selector(f)): (f["name"], [i["type"] for i in f["inputs"]])
        for f in abi
        if f["type"] == "function" and f.get("stateMutability") not in ("view", "pure")
    }


def call_name(data: bytes, functions: dict[bytes, tuple[str, list[str]]]) -> str:
    """The ImageRegistry function a transaction's calldata calls ("transfer" for plain value)."""
    return functions.get(data[:4], ("transfer", []))[0] if data else "transfer"


def anchored_size(data: bytes) -> int:
    """The tree size an ``anchorBatch(root, size, proof)`` calldata anchors."""
    from eth_abi.abi import decode

    return int(decode(["bytes32", "uint64", "bytes32[]"], data[4:])[1])


def granted_pairs(name: str, data: bytes) -> int:
    """How many (record, grantee) pairs a ``grantAccess`` or ``grantAccessBatch`` calldata
    grants (0 for any other call): a gateway folds the grants of concurrent uploads into one
    batch transaction."""
    from eth_abi.abi import decode

    if name == "grantAccess":
        return 1
    if name == "grantAccessBatch":
        return len(decode(["bytes32[]", "address[]"], data[4:])[0])
    return 0


def journal_calls(journal: Path) -> list[tuple[int, bytes]]:
    """The embedded chain's journal as (block timestamp, calldata) per mined transaction, read
    from the signed raw transactions themselves (EIP-1559 or legacy RLP)."""
    calls = []
    for line in journal.read_text("utf-8").splitlines():
        item = json.loads(line)
        if item.get("kind") != "tx":
            continue
        raw = bytes.fromhex(item["raw"])
        fields = rlp.decode(raw[1:]) if raw[0] < 0x7F else rlp.decode(raw)
        data = bytes(fields[7] if raw[0] < 0x7F else fields[5])
        calls.append((int(item["timestamp"]), data))
    return calls


def batch_entries(state_dir: Path) -> list[Entry]:
    """Every entry of the batched logs under a ledger state directory, decoded (and so checked
    to be canonical), in log order."""
    entries = []
    for log in sorted(state_dir.glob("batch-*.jsonl")):
        for line in log.read_text("ascii").splitlines():
            entries.append(Entry.decode(bytes.fromhex(json.loads(line)["entry"])))
    return entries


# --- plots --------------------------------------------------------------------------------------


def panels(title: str) -> tuple[Any, Any, Any]:
    """A figure of two panels side by side (matplotlib on Agg, imported only to plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    fig.suptitle(title, fontsize=10)
    return fig, left, right


def save(fig: Any, figures: Path, name: str) -> Path:
    """Write ``fig`` as ``figures/name`` and release it."""
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    path = figures / name
    fig.savefig(path)
    plt.close(fig)
    return path
