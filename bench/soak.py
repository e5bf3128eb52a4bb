"""Soak: many clients mixing uploads and fetches against one real gateway for a long while.

    python bench/soak.py [--duration 600] [--clients 200] [--upload-share 0.1] [--mode batched]

The gateway is the one bench/gateway_load.py runs (a `scanseal serve` child: TLS, embedded
chain and store unless ``--ledger anvil``), and so are its load machinery (httpx on uvloop, one
connection per client) and its 512 KiB CT slice. Each client loops until the time is up: with
probability ``--upload-share`` it seals a fresh CT_small for two readers (in a helper thread, as
a clinician's machine would) and uploads it; otherwise a reader fetches either the slice or an
upload acknowledged earlier, and the answer is checked (status 200, bundle byte-equal to what
was uploaded). Every request is signed just before it is sent, with its own nonce.

At the end, every acknowledged upload is fetched again and opened in full (manifest, signature,
ledger hashes, decryption, H1–H3): an upload that does not come back is a lost record. The
report gives the 5xx count and lost records (both must be 0: the exit status says so),
throughput and latency percentiles per action, the other refusals by kind, and the gateway's
RSS at start, end and its growth, sampled every ``--rss-every`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import random
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydicom.data import get_testdata_file

from evaluation._common import replace_section
from gateway_load import ROOT, _transport, ct_slice, measured, start_gateway
from scanseal.client import GatewayClient, open_bundle
from scanseal.crypto.identity import Identity
from scanseal.protocol import wire
from scanseal.protocol.signed import Domain, signed_headers
from scanseal.storage import cid_of
from scanseal.transfer.upload import seal_for_upload

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the anvil launcher
from devnode import running_anvil

SMALL = Path(str(get_testdata_file("CT_small.dcm")))
RECIPIENTS = 2


@dataclass
class Upload:
    """An upload the gateway acknowledged: who may read it and what it must give back."""

    manifest: str
    envelope_sha256: bytes
    readers: list[Identity]


@dataclass
class Tally:
    """Everything the clients saw, by action."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"upload": [], "fetch": []})
    ok: dict[str, int] = field(default_factory=lambda: {"upload": 0, "fetch": 0})
    server_errors: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    resent: int = 0
    """Requests sent again, newly signed, after the server closed an idle keep-alive connection
    just as they went out (httpx's RemoteProtocolError). Such a request was most likely never
    read; an upload that was would come back refused as a duplicate, and count as a refusal."""
    wrong_bytes: int = 0
    acked: dict[str, Upload] = field(default_factory=dict)

    def refused(self, action: str, kind: str) -> None:
        key = f"{action}: {kind}"
        self.refusals[key] = self.refusals.get(key, 0) + 1


class Soak:
    """The clients' shared view of one gateway: its URL, domain, identities and the slice."""

    def __init__(
        self, url: str, ctx: ssl.SSLContext, domain: Domain, people: list[Identity], work: Path
    ) -> None:
        self.url, self.ctx, self.domain, self.work = url, ctx, domain, work
        self.sender, self.readers = people[1], people[2:]
        self.tally = Tally()
        self.sealer = ThreadPoolExecutor(1, thread_name_prefix="seal")
        self.slice_record = ""
        self.slice_bundle = b""
        self._seals = 0

    def seal(self, readers: list[Identity]) -> tuple[str, bytes, bytes]:
        """Record CID, request body and envelope digest of a fresh upload (blocking)."""
        self._seals += 1
        with tempfile.TemporaryDirectory(dir=self.work) as scratch:
            sealed = seal_for_upload(SMALL, [r.card for r in readers], self.sender, Path(scratch))
            manifest = sealed.manifest_path.read_bytes()
            envelope = sealed.envelope.read_bytes()
        body = wire.pack({"manifest": manifest.decode("utf-8")}, envelope)
        return cid_of(io.BytesIO(manifest)), body, hashlib.sha256(envelope).digest()

    async def client(self, seed: int, deadline: float, upload_share: float) -> None:
        """One clinician's machine: its own connection, uploads and fetches until ``deadline``."""
        rng = random.Random(seed)
        async with httpx.AsyncClient(
            base_url=self.url, verify=self.ctx, timeout=120, trust_env=False,
            transport=_transport(self.ctx),
        ) as http:  # fmt: skip
            while time.monotonic() < deadline:
                if rng.random() < upload_share:
                    await self._upload(http, rng.sample(self.readers, RECIPIENTS))
                else:
                    await self._fetch(http, rng)

    async def _upload(self, http: httpx.AsyncClient, readers: list[Identity]) -> None:
        loop = asyncio.get_running_loop()
        record, body, digest = await loop.run_in_executor(self.sealer, self.seal, readers)

        def headers() -> dict[str, str]:
            signed = signed_headers(self.sender.account, self.domain, "upload", record, body=body)
            return {**signed, "Content-Type": wire.MEDIA_TYPE}

        answer = await self._send(http, "upload", "POST", "/v1/records", headers, body)
        if answer is not None:
            meta, _ = wire.unpack(body)
            self.tally.acked[record] = Upload(str(meta["manifest"]), digest, readers)

    async def _fetch(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        acked = self.tally.acked
        if acked and rng.random() < 0.5:
            record = rng.choice(list(acked))
            upload: Upload | None = acked[record]
            reader = rng.choice(acked[record].readers)
        else:
            record, upload, reader = self.slice_record, None, rng.choice(self.readers)

        def headers() -> dict[str, str]:
            return signed_headers(reader.account, self.domain, "fetch", record)

        answer = await self._send(http, "fetch", "GET", f"/v1/records/{record}", headers, None)
        if answer is None:
            return
        if upload is None:
            good = answer == self.slice_bundle
        else:
            meta, envelope = wire.unpack(answer)
            good = meta["manifest"] == upload.manifest
            good = good and hashlib.sha256(envelope).digest() == upload.envelope_sha256
        self.tally.wrong_bytes += not good

    async def _send(
        self, http: httpx.AsyncClient, action: str, method: str, path: str,
        headers: Callable[[], dict[str, str]], body: bytes | None,
    ) -> bytes | None:  # fmt: skip
        """One timed request, signed as it goes out; the body on 200, None otherwise (counted
        by kind). A request that met a keep-alive connection the server had just closed is
        signed and sent once more, as any HTTP client would (counted in ``resent``)."""
        started = time.perf_counter()
        try:
            for attempt in range(2):
                try:
                    response = await http.request(method, path, headers=headers(), content=body)
                    break
                except httpx.RemoteProtocolError:
                    if attempt:
                        raise
                    self.tally.resent += 1
        except httpx.HTTPError as error:
            self.tally.refused(action, type(error).__name__)
            return None
        finally:
            self.tally.latencies[action].append(time.perf_counter() - started)
        if response.status_code == 200:
            self.tally.ok[action] += 1
            return response.content
        if response.status_code >= 500:
            self.tally.server_errors += 1
        try:
            kind = str(response.json()["error"])
        except (ValueError, KeyError, TypeError):
            kind = "not a JSON refusal"
        self.tally.refused(action, f"HTTP {response.status_code} {kind}")
        return None


def rss_kib(pid: int) -> int:
    """Resident set size of a process (Linux /proc), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(soak: Soak, pid: int, clients: int, duration: float, share: float,
              every: float) -> list[tuple[float, int]]:  # fmt: skip
    """Run the clients for ``duration`` seconds; RSS samples (seconds in, KiB) meanwhile."""
    started = time.monotonic()
    deadline = started + duration
    samples = [(0.0, rss_kib(pid))]

    async def sample() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))
            samples.append((round(time.monotonic() - started, 1), rss_kib(pid)))
            print(f"  {samples[-1][0]:>6.0f} s  rss {samples[-1][1] / 1024:.0f} MiB  "
                  f"ok {soak.tally.ok}  5xx {soak.tally.server_errors}", file=sys.stderr,
                  flush=True)  # fmt: skip

    await asyncio.gather(sample(), *(soak.client(c, deadline, share) for c in range(clients)))
    return samples


def lost_records(soak: Soak, ca: Path, work: Path) -> tuple[int, list[str]]:
    """Fetch and fully open every acknowledged upload; how many failed, and the first reasons."""
    lost, reasons = 0, list[str]()
    original = SMALL.read_bytes()
    clients: dict[str, GatewayClient] = {}
    try:
        for record, upload in soak.tally.acked.items():
            reader = upload.readers[0]
            client = clients.get(reader.name)
            if client is None:
                client = clients[reader.name] = GatewayClient(soak.url, reader, ca=ca)
            output = work / "check.dcm"
            try:
                open_bundle(client.fetch_bundle(record), record, reader, output)
                if output.read_bytes() != original:
                    raise ValueError("opened bytes differ from the file sealed")
            except Exception as error:  # every way of not coming back counts as lost
                lost += 1
                if len(reasons) < 5:
                    reasons.append(f"{record}: {type(error).__name__}: {error}")
            finally:
                output.unlink(missing_ok=True)
    finally:
        for client in clients.values():
            client.close()
    return lost, reasons


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


@contextlib.contextmanager
def gateway(root: Path, mode: str, ledger: str) -> Iterator[tuple[Any, str, Any]]:
    """bench/gateway_load.py's gateway (on anvil when asked), stopped by its PID at the end."""
    with contextlib.ExitStack() as stack:
        ledger_url = stack.enter_context(running_anvil()) if ledger == "anvil" else None
        process, url, extra = start_gateway(root, mode, ledger_url)
        try:
            yield process, url, extra
        finally:
            process.terminate()
            process.wait(60)


def soak(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    with gateway(root, args.mode, args.ledger) as (process, url, (people, certs)):
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        with GatewayClient(url, people[1], ca=certs.ca) as sender:
            answer = sender.send(ct_slice(root / "ct-slice.dcm"), [r.card for r in people[2:]],
                                 root)  # fmt: skip
            domain = sender.domain
        work = root / "work"
        work.mkdir()
        state = Soak(url, ctx, domain, people, work)
        state.slice_record = str(answer["manifest_cid"])
        with GatewayClient(url, people[2], ca=certs.ca) as reader:
            state.slice_bundle = reader.fetch_bundle(state.slice_record)
            reader.fetch(state.slice_record, root / "slice-check.dcm")  # genuine: opened in full
        import uvloop

        print(f"soak: {args.clients} clients for {args.duration:g} s against {url}",
              file=sys.stderr)  # fmt: skip
        started = time.monotonic()
        samples = uvloop.run(
            run(state, process.pid, args.clients, args.duration, args.upload_share,
                args.rss_every)
        )  # fmt: skip
        wall = time.monotonic() - started
        state.sealer.shutdown()
        rss_end = rss_kib(process.pid)
        lost, reasons = lost_records(state, certs.ca, work)
    tally = state.tally
    return {
        "clients": args.clients,
        "duration_s": round(wall, 1),
        "mode": args.mode,
        "ledger": args.ledger,
        "server_errors_5xx": tally.server_errors,
        "lost_records": lost,
        "lost_examples": reasons,
        "wrong_bytes": tally.wrong_bytes,
        "acknowledged_uploads": len(tally.acked),
        "ok": tally.ok,
        "throughput_per_s": {k: round(v / wall, 1) for k, v in tally.ok.items()},
        "latency_s": {k: percentiles(v) for k, v in tally.latencies.items()},
        "refusals": tally.refusals,
        "resent_after_keepalive_close": tally.resent,
        "rss_mib": {
            "start": round(samples[0][1] / 1024, 1),
            "end": round(rss_end / 1024, 1),
            "growth": round((rss_end - samples[0][1]) / 1024, 1),
            "samples": [(t, round(kib / 1024, 1)) for t, kib in samples],
        },
    }


SECTION = "## Soak"


def section(report: dict[str, Any]) -> str:
    """The Soak section of docs/RESULTS.md, from one report."""
    rss, lat = report["rss_mib"], report["latency_s"]
    load = " / ".join(f"{value:.1f}" for value in report.get("loadavg_before", []))
    rows = [
        ("clients, duration", f"{report['clients']}, {report['duration_s']:.0f} s"),
        ("ledger, mode", f"{report['ledger']}, {report['mode']}"),
        ("5xx answers", f"{report['server_errors_5xx']}"),
        ("lost records (acknowledged, not opened at the end)", f"{report['lost_records']}"),
        ("wrong bytes served", f"{report['wrong_bytes']}"),
        ("uploads acknowledged", f"{report['acknowledged_uploads']:,}"),
        ("fetches answered", f"{report['ok'].get('fetch', 0):,}"),
        ("throughput", ", ".join(f"{k} {v}/s" for k, v in report["throughput_per_s"].items())),
    ]
    rows += [
        (f"{action} latency p50 / p95 / p99 / max",
         " / ".join(f"{lat[action][key]:.2f} s" for key in ("p50", "p95", "p99", "max")))
        for action in sorted(lat)
    ]  # fmt: skip
    growth = f"{rss['start']:.0f} → {rss['end']:.0f} MiB (+{rss['growth']:.0f} MiB)"
    rows.append(("gateway RSS start → end (growth)", growth))
    lines = [
        SECTION,
        "",
        f"Written by `{report.get('command', 'python bench/soak.py')} --results docs/RESULTS.md` "
        f"(`make soak`), not by `make bench`; run {report.get('date', '–')}, load average "
        f"{load or '–'} before it (the machine was shared, so latencies overstate a quiet one). "
        "Every acknowledged upload is fetched and opened in full at the end.",
        "",
        "| reading | value |",
        "| --- | --- |",
        *(f"| {what} | {value} |" for what, value in rows),
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, report: dict[str, Any]) -> None:
    """Replace (or append) the Soak section of ``path``."""
    replace_section(path, SECTION, section(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--upload-share", type=float, default=0.1,
                        help="probability that a client's next request is an upload")  # fmt: skip
    parser.add_argument("--mode", default="batched", choices=["batched", "per-record"])
    parser.add_argument("--ledger", default="embedded", choices=["embedded", "anvil"])
    parser.add_argument("--rss-every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "soak.json")
    parser.add_argument("--results", type=Path, help="write the Soak section of this RESULTS.md")
    parser.add_argument(
        "--render-only", action="store_true", help="write --results from --json, measuring nothing"
    )
    args = parser.parse_args()
    if args.render_only:
        report = json.loads(args.json.read_text("utf-8"))
    else:
        report = measured("soak", lambda scratch: soak(scratch, args), args.json)
    if args.results is not None:
        write_section(args.results, report)
    failed = report["server_errors_5xx"] or report["lost_records"] or report["wrong_bytes"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
