"""Gateway under load: concurrent clients doing signed fetches of a 512 KiB sealed CT slice.

    python bench/gateway_load.py [--levels 10,50,100,200,500,1000] [--rounds 2] [--mode batched]

A real `scanseal serve` (TLS, embedded chain and store) runs as a child process; so does the
baseline, a plain HTTPS file server (uvicorn, the same server stack) that serves the very same
envelope bytes with no signature, nonce, ledger or store behind it. At each level, that many
clients (asyncio + httpx, one connection each) run `--rounds` fetches one after the other.
Requests are signed before the clock starts (each client would sign on its own machine), and
every one carries a fresh nonce, so every fetch is checked, logged on the ledger and recorded as
a used nonce. A fetch succeeds when the answer is 200 and the bundle parses strictly and equals,
byte for byte, the bundle that was opened and verified in full before the clock started (the
baseline: 200 and the same envelope bytes). Clients and servers share this machine's cores, so
the figures are a lower bound for a gateway on its own host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import io
import json
import os
import platform
import shlex
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import numpy as np
import pydicom
from httpcore._utils import is_socket_readable
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian

from scanseal.client import GatewayClient
from scanseal.crypto.identity import Keystore
from scanseal.protocol import wire
from scanseal.protocol.signed import new_request, sign_request
from scanseal.service.tls import make_certs
from scanseal.storage import cid_of

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the anvil launcher the tests use
from devnode import ANVIL_FUNDER_KEY, running_anvil  # noqa: E402

PASSPHRASE = "bench passphrase"
READERS = 16


def ct_slice(path: Path) -> Path:
    """A 512 × 512 16-bit CT slice (512 KiB of pixels): CT_small's header, a synthetic body."""
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    yy, xx = np.mgrid[-256:256, -256:256]
    body = ((xx**2 + (yy * 1.3) ** 2) < 200**2) * 1000 + ((xx - 60) ** 2 + yy**2 < 40**2) * 400
    noise = np.random.default_rng(7).integers(0, 40, size=(512, 512))
    ds.Rows, ds.Columns = 512, 512
    ds.PixelData = (body + noise).astype(np.uint16).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(str(path), enforce_file_format=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, ctx: ssl.SSLContext, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url, verify=ctx, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def start_gateway(
    root: Path, mode: str, ledger_url: str | None
) -> tuple[subprocess.Popen[bytes], str, Any]:
    home = root / "home"
    keystore = Keystore(home / "keys", scrypt_n=2**10)
    people = [keystore.create(name, PASSPHRASE) for name in ["gateway", "sender"]]
    people += [keystore.create(f"reader{i}", PASSPHRASE) for i in range(READERS)]
    members = home / "members"
    members.mkdir()
    for person in people[1:]:
        (members / f"{person.name}.json").write_text(person.card.to_json(), "utf-8")
    certs = make_certs(root / "certs")
    port = free_port()
    config = home / "scanseal.toml"
    config.write_text(
        f'[gateway]\nidentity = "gateway"\nport = {port}\nmembers = "{members}"\n'
        f'tls_cert = "{certs.cert}"\ntls_key = "{certs.key}"\n'
        f'[ledger]\nmode = "{mode}"\nbatch_size = 1000\nbatch_seconds = 2\n'
        + (f'backend = "jsonrpc"\nurl = "{ledger_url}"\n' if ledger_url else ""),
        "utf-8",
    )
    env = dict(os.environ, SCANSEAL_HOME=str(home), SCANSEAL_PASSPHRASE=PASSPHRASE)
    if ledger_url:
        env["SCANSEAL_LEDGER_FUNDER_KEY"] = ANVIL_FUNDER_KEY
    env["PYTHONPATH"] = str(ROOT / "src")
    process = subprocess.Popen(
        [sys.executable, "-m", "scanseal", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    wait_ready(f"{url}/v1/health", ssl.create_default_context(cafile=str(certs.ca)), process)
    return process, url, (people, certs)


def start_baseline(payload: Path, certs: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-static", str(payload), "--port", str(port),
         "--cert", str(certs.cert), "--key", str(certs.key)],
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    wait_ready(f"{url}/file", ssl.create_default_context(cafile=str(certs.ca)), process)
    return process, url


def serve_static(payload: Path, port: int, cert: str, key: str) -> None:
    """The baseline: the same bytes over HTTPS, nothing else."""
    import uvicorn

    data = payload.read_bytes()
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", b"%d" % len(data)),
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key,
                log_level="warning", access_log=False)  # fmt: skip


class _LoopStream(httpcore.AsyncNetworkStream):
    """One connection on the event loop's own transport, so TLS runs in uvloop's C code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as error:
            raise httpcore.ReadTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as error:
            raise httpcore.WriteTimeout(str(error)) from error
        except (OSError, RuntimeError) as error:  # RuntimeError: the transport already closed
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:  # ssl.SSLError included
            raise httpcore.ConnectError(str(error)) from error
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # how httpcore notices that the server closed an idle connection
            sock = self._writer.get_extra_info("socket")
            return self._reader.at_eof() or is_socket_readable(sock)
        return self._writer.get_extra_info(info)


class _LoopBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer on asyncio streams instead of anyio's.

    anyio runs TLS through ssl.MemoryBIO in Python; on uvloop, asyncio streams use the loop's
    native TLS transport, which cost the load generator about a third less CPU per 512 KiB fetch
    (measured with the baseline server). HTTP itself stays httpx and httpcore, for both sides.
    """

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        return _LoopStream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("the load generator only speaks TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _transport(ctx: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, its connection pool given the loop backend (one per client)."""
    transport = httpx.AsyncHTTPTransport(verify=ctx)
    transport._pool = httpcore.AsyncConnectionPool(ssl_context=ctx, network_backend=_LoopBackend())
    return transport


async def run_level(
    url: str,
    requests: list[list[tuple[str, dict[str, str]]]],
    ctx: ssl.SSLContext,
    check: Any,
) -> dict[str, Any]:
    """One task per client, each running its requests in order; latency of every request."""
    clients = len(requests)
    latencies: list[float] = []
    failures = 0
    errors: dict[str, int] = {}

    async def client(mine: list[tuple[str, dict[str, str]]]) -> None:
        """One clinician's machine: its own HTTP client and connection."""
        nonlocal failures
        async with httpx.AsyncClient(
            base_url=url, verify=ctx, timeout=120, trust_env=False, transport=_transport(ctx)
        ) as http:
            for path, headers in mine:
                started = time.perf_counter()
                try:
                    answer = await http.get(path, headers=headers)
                    ok = answer.status_code == 200 and check(answer.content)
                    problem = f"HTTP {answer.status_code}" if not ok else ""
                except httpx.HTTPError as error:
                    ok, problem = False, type(error).__name__
                latencies.append(time.perf_counter() - started)
                failures += not ok
                if problem:
                    errors[problem] = errors.get(problem, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(mine) for mine in requests))
    wall = time.perf_counter() - started
    total = len(latencies)
    cuts = statistics.quantiles(latencies, n=100) if total > 1 else latencies * 99
    return {
        "clients": clients,
        "requests": total,
        "success_rate": (total - failures) / total,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "mean": statistics.fmean(latencies),
        "throughput": (total - failures) / wall,
        "wall": wall,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,50,100,200,500,1000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", default="batched", choices=["batched", "per-record"])
    parser.add_argument(
        "--ledger", default="embedded", choices=["embedded", "anvil"],
        help="the gateway's chain: in its process (py-evm), or a real anvil node over JSON-RPC",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "gateway_load.json")
    parser.add_argument("--serve-static", type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    if args.serve_static:
        serve_static(args.serve_static, args.port, args.cert, args.key)
        return
    levels = [int(x) for x in args.levels.split(",")]
    measured(
        "gateway_load",
        lambda scratch: bench(scratch, levels, args.rounds, args.mode, args.ledger),
        args.json,
    )


def measured(script: str, work: Callable[[Path], dict[str, Any]], out: Path) -> dict[str, Any]:
    """Run ``work`` in a scratch directory; its report, stamped with the command, date and load
    before and after, is printed and written to ``out``."""
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"scanseal-{script}-") as scratch:
        report = work(Path(scratch))
    report = {
        "command": shlex.join(["python", f"bench/{script}.py", *sys.argv[1:]]),
        "date": started.isoformat(timespec="seconds"),
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
        **report,
    }
    print(json.dumps(report, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    return report


def bench(root: Path, levels: list[int], rounds: int, mode: str, ledger: str) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        ledger_url = stack.enter_context(running_anvil()) if ledger == "anvil" else None
        return _bench(root, levels, rounds, mode, ledger, ledger_url)


def _bench(
    root: Path, levels: list[int], rounds: int, mode: str, ledger: str, ledger_url: str | None
) -> dict[str, Any]:
    source = ct_slice(root / "ct-slice.dcm")
    gateway, url, (people, certs) = start_gateway(root, mode, ledger_url)
    baseline = None
    try:
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        sender, readers = people[1], people[2:]
        with GatewayClient(url, sender, ca=certs.ca) as client:
            answer = client.send(source, [r.card for r in readers], root)
            domain = client.domain
        record = str(answer["manifest_cid"])
        with GatewayClient(url, readers[0], ca=certs.ca) as client:
            bundle = client.fetch_bundle(record)
            client.fetch(record, root / "check.dcm")  # one full open: the bundle is genuine
        _, envelope_bytes = wire.unpack(bundle)
        payload = root / "envelope.sseal"
        payload.write_bytes(envelope_bytes)
        baseline, base_url = start_baseline(payload, certs)

        opened_meta, _ = wire.unpack(bundle)  # this bundle was fully opened and checked above
        if cid_of(io.BytesIO(str(opened_meta["manifest"]).encode())) != record:
            raise SystemExit("the gateway's manifest does not hash to the record's CID")

        def check_bundle(data: bytes) -> bool:
            """Strict parse, then byte equality with the bundle that was opened and verified:
            stronger than re-hashing the manifest, and cheap enough not to starve the clients."""
            meta, body = wire.unpack(data)
            return meta == opened_meta and body == envelope_bytes

        results = []
        for clients in levels:
            signed = [
                [
                    (
                        f"/v1/records/{record}",
                        sign_request(
                            readers[(c + r) % READERS].account,
                            domain,
                            new_request(readers[(c + r) % READERS].account, domain, "fetch",
                                        record, lifetime=300),
                        ),
                    )
                    for r in range(rounds)
                ]
                for c in range(clients)
            ]  # fmt: skip
            plain: list[list[tuple[str, dict[str, str]]]] = [
                [("/file", {})] * rounds for _ in range(clients)
            ]
            row = {
                "gateway": _run(run_level(url, signed, ctx, check_bundle), gateway.pid),
                "baseline": _run(
                    run_level(base_url, plain, ctx, lambda d: d == envelope_bytes),
                    baseline.pid,
                ),
            }
            results.append(row)
            g, b = row["gateway"], row["baseline"]
            print(
                f"{clients:>5} clients  gateway {g['success_rate']:.1%} p50 {g['p50']:.3f}s "
                f"p95 {g['p95']:.3f}s p99 {g['p99']:.3f}s {g['throughput']:.0f}/s | "
                f"baseline {b['success_rate']:.1%} p95 {b['p95']:.3f}s {b['throughput']:.0f}/s | "
                f"cpu ms/fetch server {g['server_cpu_ms']:.1f}/{b['server_cpu_ms']:.1f} "
                f"client {g['client_cpu_ms']:.1f}/{b['client_cpu_ms']:.1f} | "
                f"load {b['loadavg_1min']:.1f}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for process in (gateway, baseline):
            if process is not None:
                process.terminate()
                process.wait(30)
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
        },
        "envelope_bytes": len(envelope_bytes),
        "rounds": rounds,
        "mode": mode,
        "ledger": ledger,
        "results": results,
    }


def _run(level: Any, server_pid: int) -> dict[str, Any]:
    """Run one level on uvloop (as uvicorn serves), whose TLS is far cheaper than asyncio's.

    Also charges the CPU time each side spent to the level: milliseconds of CPU per request for
    the server process and for this load generator. Unlike latency, these barely move when other
    work shares the machine, so they show where the time goes even on a busy host.
    """
    import uvloop

    gc.collect()
    gc.freeze()  # the signed requests and imports: not for the collector to walk mid-level
    server_before, client_before = _cpu_seconds(server_pid), time.process_time()
    result: dict[str, Any] = uvloop.run(level)
    server_cpu = _cpu_seconds(server_pid) - server_before
    client_cpu = time.process_time() - client_before
    result["server_cpu_ms"] = 1000 * server_cpu / result["requests"]
    result["client_cpu_ms"] = 1000 * client_cpu / result["requests"]
    result["loadavg_1min"] = os.getloadavg()[0]  # at the end of the level, other work included
    return result


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a child process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
