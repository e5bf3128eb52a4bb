"""Where one upload's (and one fetch's) time goes inside the gateway, without a profiler.

    python bench/upload_profile.py [--uploads 100] [--mode batched] [--threads 1] [--fetch]
                                   [--deferred]

An in-process Gateway (``open_gateway``, as ``scanseal serve`` builds it: embedded chain and
block store) takes ``--uploads`` sealed 512×512 CT slices through ``Gateway.upload`` (signed
requests made before the clock starts, ``--threads`` at once), then with ``--fetch`` the
recipient's ``Gateway.fetch`` of each. ``--deferred``: the uploads defer their recipients' grant
to the study (``"grants": "study"``, what ``scanseal send`` does for a DICOM study), and the
study manifest over them is then registered (``service.studies.register``, timed on its own:
its one grant transaction opens them all). The functions named in ``TIMED`` are wrapped with
wall-clock and thread-CPU timers (cProfile's overhead inflates py-evm several times over, which
hides the fsyncs that dominate the wall clock); the table is per upload (or fetch), nested calls
included in their callers. The machine is shared: compare CPU columns across runs, and wall
columns only at a low load average (printed).
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

TIMED = {
    "scanseal.service.gateway": ["Gateway.upload", "Gateway.register_upload",
                                 "Gateway.authenticate", "Gateway._finish_upload",
                                 "Gateway.fetch", "Gateway._bundle", "Gateway._ledger_record",
                                 "store_sealed", "read_all"],
    "scanseal.service.state": ["GatewayState.begin_upload", "GatewayState.add_record",
                               "GatewayState.use_nonce"],
    "scanseal.service.audit_index": ["AuditIndex.touch"],
    "scanseal.service.inbox": ["Inbox.add"],
    "scanseal.service._grants": ["GrantBatcher.grant", "GrantBatcher._send"],
    "scanseal.service.studies": ["register", "register_study", "settle"],
    "scanseal.service._study_grants": ["study_grants", "send_grants", "_revoked_elsewhere"],
    "scanseal.storage._embedded": ["EmbeddedStore.put", "EmbeddedStore.get"],
    "scanseal.transfer.records": ["Records.register", "Records.ungranted",
                                  "Records.authorize_fetch"],
    "scanseal.ledger.core": ["Ledger.identity_of", "Ledger.grant_many", "Ledger.store_record",
                             "Ledger.get_record", "Ledger.log_access"],
    "scanseal.ledger._mirror": ["AccessMirror._sync"],
    "scanseal.ledger._chain": ["Chain.wait", "Chain.logs", "Chain.block_hash",
                               "EmbeddedChain.wait", "EmbeddedChain.block_hash",
                               "EmbeddedChain.block_outline",
                               "EmbeddedChain._submit", "EmbeddedChain._write"],
    "eth_account.signers.local": ["LocalAccount.sign_transaction"],
    "eth_tester.main": ["EthereumTester.mine_blocks", "EthereumTester.get_transaction_receipt"],
    "eth_tester.backends.pyevm.main": ["PyEVMBackend.send_raw_transaction"],
}  # fmt: skip
WALL: dict[str, float] = collections.defaultdict(float)
CPU: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()


def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            WALL[label] += time.perf_counter() - wall
            CPU[label] += time.thread_time() - cpu
            CALLS[label] += 1

    return wrapper


def instrument() -> None:
    for module_name, names in TIMED.items():
        module = importlib.import_module(module_name)
        for name in names:
            owner: Any = module
            *path, attribute = name.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, attribute, timed(name, getattr(owner, attribute)))


def report(what: str, count: int, seconds: float, cpu: float) -> None:
    load = os.getloadavg()[0]
    print(f"{what} × {count}: {seconds * 1e3 / count:.1f} ms wall, {cpu * 1e3 / count:.1f} ms "
          f"CPU (whole process) per {what}; load average {load:.2f}")  # fmt: skip
    print(f"  {'function':42s} {'calls':>6s} {'wall ms':>8s} {'CPU ms':>8s}  (per {what})")
    for label, spent in sorted(WALL.items(), key=lambda item: -item[1]):
        print(f"  {label:42s} {CALLS[label]:6d} {spent * 1e3 / count:8.2f} "
              f"{CPU[label] * 1e3 / count:8.2f}")  # fmt: skip
    for table in (WALL, CPU, CALLS):
        table.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--mode", choices=["batched", "per-record"], default="batched")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fetch", action="store_true")
    parser.add_argument("--deferred", action="store_true")
    args = parser.parse_args()

    from pydicom import dcmread

    from evaluation._systems import ct_study
    from gateway_harness import PASSPHRASE, make_world
    from scanseal.protocol import wire
    from scanseal.protocol.signed import REQUEST_HEADER, SIGNATURE_HEADER, signed_headers
    from scanseal.service.server import open_gateway
    from scanseal.storage import cid_of
    from scanseal.transfer import seal_for_upload

    def headers(signed: dict[str, str]) -> dict[str, str | None]:
        return {"request": signed[REQUEST_HEADER], "signature": signed[SIGNATURE_HEADER]}

    root = Path(tempfile.mkdtemp(prefix="upload-profile-"))
    world = make_world(root, ["sender", "reader"], mode=args.mode)
    os.environ["SCANSEAL_HOME"] = str(world.home)
    sender, reader = world.people["sender"], world.people["reader"]
    sealed, paths = [], ct_study(root / "study", args.uploads)
    for index, path in enumerate(paths):
        done = seal_for_upload(path, [reader.card], sender, root / f"seal{index}")
        sealed.append((done.manifest_path.read_bytes(), done.envelope.read_bytes()))
    gateway = open_gateway(world.config, PASSPHRASE)
    requests = []
    for manifest, envelope in sealed:
        meta = {"manifest": manifest.decode(), **({"grants": "study"} if args.deferred else {})}
        body = wire.pack(meta, envelope)
        record = cid_of(io.BytesIO(manifest))
        signed = signed_headers(sender.account, gateway.domain, "upload", record, body=body)
        requests.append((headers(signed), body))
    instrument()
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(args.threads) as pool:
        answers = list(pool.map(lambda request: gateway.upload(*request), requests))
    report("upload", args.uploads, time.perf_counter() - started, time.process_time() - cpu)
    print(f"  grant transactions: {gateway.grants.transactions}")
    if args.deferred:
        register_study(gateway, sender, str(dcmread(paths[0]).StudyInstanceUID), answers)
    if args.fetch:
        fetches = [(answer["manifest_cid"], headers(signed_headers(
            reader.account, gateway.domain, "fetch", answer["manifest_cid"])))
            for answer in answers]  # fmt: skip
        started, cpu = time.perf_counter(), time.process_time()
        for record, signed_fetch in fetches:
            gateway.fetch(record, signed_fetch)
        report("fetch", args.uploads, time.perf_counter() - started, time.process_time() - cpu)
    gateway.close()


def register_study(gateway: Any, sender: Any, uid: str, answers: list[dict[str, Any]]) -> None:
    """Register the study manifest over the uploads (their deferred grants: one transaction)."""
    from scanseal.protocol.signed import REQUEST_HEADER, SIGNATURE_HEADER, signed_headers
    from scanseal.service.studies import register
    from scanseal.storage import cid_of
    from scanseal.transfer.study_manifest import StudyManifest

    records = [str(answer["manifest_cid"]) for answer in answers]
    manifest = StudyManifest.build(uid, records, sender.name, sender.address, int(time.time()))
    body = manifest.signed_by(sender.sign).to_bytes()
    signed = signed_headers(sender.account, gateway.domain, "study", cid_of(io.BytesIO(body)),
                            body=body)  # fmt: skip
    headers = {"request": signed[REQUEST_HEADER], "signature": signed[SIGNATURE_HEADER]}
    started, cpu = time.perf_counter(), time.process_time()
    answer = register(gateway, headers, body)
    report("study", 1, time.perf_counter() - started, time.process_time() - cpu)
    print(f"  study grant transactions: {len(answer['grants'])} for {len(records)} instances")


if __name__ == "__main__":
    main()
