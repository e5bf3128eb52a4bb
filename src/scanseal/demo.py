"""``make demo``: three departments share real DICOM studies through a ScanSeal gateway.

Everything runs on one machine with the embedded defaults: the gateway (FastAPI on 127.0.0.1,
a free port) over the embedded EVM chain and the embedded IPFS-compatible block store. Radiology,
cardiology and oncology each have clinicians with their own keys. A radiologist seals real CT
and MR images shipped with pydicom for a cardiologist and sends them; then the demo shows an
authorized fetch, an unauthorized fetch denied (and logged), a replayed request denied, a grant
and a revocation, a tampered envelope caught, and the audit trail read from the ledger. Each
outcome is checked, so the demo fails loudly if ScanSeal misbehaves. It all lives in a
temporary SCANSEAL_HOME that is removed at the end.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pydicom.data import get_testdata_file
from rich.console import Console
from rich.table import Table

from scanseal.client import GatewayClient, error_from_response, open_bundle
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import AccessDenied, IntegrityError, ReplayDetected, ScanSealError
from scanseal.ledger import Ledger, LedgerConfig, utc_iso
from scanseal.protocol import wire
from scanseal.service.config import GatewayConfig
from scanseal.service.gateway import Gateway
from scanseal.service.state import GatewayState
from scanseal.storage import EmbeddedStore

_console = Console(highlight=False)
_DEPARTMENTS = {
    "radiology": ["dr-ito", "dr-sato"],
    "cardiology": ["dr-lee", "dr-novak"],
    "oncology": ["dr-okafor", "dr-haddad"],
}
_GATEWAY = "radiology-gw"
_STUDY = ["CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "MR2_J2KR.dcm"]
_PASSPHRASE = "demo passphrase, not for production"  # noqa: S105 - a throwaway demo keystore


def _expect(action: Callable[[], object], expected: type[ScanSealError]) -> str:
    """Run ``action``, which must fail with ``expected``; return its one-line reason."""
    try:
        action()
    except expected as error:
        return error.reason
    raise SystemExit(f"demo failed: expected {expected.__name__}, but the action succeeded")


def _identities(keystore: Keystore) -> dict[str, Identity]:
    names = [_GATEWAY, *(n for members in _DEPARTMENTS.values() for n in members)]
    with _console.status("creating identities for three departments"):
        return {name: keystore.create(name, _PASSPHRASE) for name in names}


@contextmanager
def _gateway(home: Path, people: dict[str, Identity]) -> Iterator[str]:
    """The radiology gateway on the embedded chain and store, served on a free local port."""
    import socket

    import uvicorn

    from scanseal.service.app import create_app

    members = home / "members"
    members.mkdir()
    for name, person in people.items():
        (members / f"{name}.json").write_text(person.card.to_json(), "utf-8")
    me = people[_GATEWAY]
    ledger = Ledger.open(LedgerConfig(state_dir=home / "chain"), deployer=me.account)
    config = GatewayConfig(identity=_GATEWAY, members=members, state_dir=home / "gateway")
    gateway = Gateway(
        me, ledger, EmbeddedStore(home / "blocks"), GatewayState(home / "gw.sqlite3"), config
    )
    gateway.bootstrap()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(gateway), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        gateway.close()


def run(workdir: Path) -> tuple[Table, Table]:
    """Run every scenario in ``workdir``; returns the results table and the audit table."""
    people = _identities(Keystore(workdir / "keys"))
    results = Table(title="ScanSeal demo: radiology -> cardiology, oncology looking in")
    for column in ("scenario", "who", "outcome"):
        results.add_column(column)
    study = [Path(str(get_testdata_file(name))) for name in _STUDY]
    with _gateway(workdir, people) as url:
        client = {name: GatewayClient(url, person) for name, person in people.items()}
        try:
            records = _send_and_fetch(client, people, study, workdir, results)
            _attacks(client, people, url, records[0], study[0], workdir, results)
            audit = _audit_table(client["dr-ito"].audit(records[0]), people, records[0])
        finally:
            for each in client.values():
                each.close()
    return results, audit


def _send_and_fetch(
    client: dict[str, GatewayClient],
    people: dict[str, Identity],
    study: list[Path],
    workdir: Path,
    results: Table,
) -> list[str]:
    outbox, inbox = workdir / "outbox", workdir / "inbox"
    outbox.mkdir()
    inbox.mkdir()
    records = []
    for image in study:
        answer = client["dr-ito"].send(image, [people["dr-lee"].card], outbox)
        records.append(str(answer["manifest_cid"]))
        tx = str(answer["ledger"]["tx_hash"])
        results.add_row(
            f"seal + send {image.name}", "dr-ito (radiology)", f"record on chain {tx[:18]}…"
        )
    for image, record in zip(study, records, strict=True):
        opened = client["dr-lee"].fetch(record, inbox / image.name)
        if opened.path.read_bytes() != image.read_bytes():
            raise SystemExit("demo failed: a fetched image differs from the original")
    results.add_row(
        f"fetch {len(study)} images (signed requests)",
        "dr-lee (cardiology)",
        "byte-identical; H1-H3 and ledger hashes match",
    )
    return records


def _attacks(
    client: dict[str, GatewayClient],
    people: dict[str, Identity],
    url: str,
    record: str,
    original: Path,
    workdir: Path,
    results: Table,
) -> None:
    out = workdir / "attacks"
    out.mkdir()
    reason = _expect(lambda: client["dr-okafor"].fetch(record, out / "a.dcm"), AccessDenied)
    results.add_row("fetch without a grant", "dr-okafor (oncology)", f"denied, logged: {reason}")

    headers = client["dr-lee"].signed("fetch", record)
    with httpx.Client(base_url=url) as http:
        first = http.get(f"/v1/records/{record}", headers=headers)
        again = http.get(f"/v1/records/{record}", headers=headers)
    if first.status_code != 200:
        raise SystemExit("demo failed: the genuine request was refused")
    reason = _expect(lambda: _raise_for(again), ReplayDetected)
    results.add_row("replay a captured request", "eavesdropper", f"denied, logged: {reason}")

    client["dr-ito"].grant(record, people["dr-novak"].card)
    opened = client["dr-novak"].fetch(record, out / "novak.dcm")
    if opened.path.read_bytes() != original.read_bytes():
        raise SystemExit("demo failed: the granted fetch differs from the original")
    results.add_row("grant, then fetch", "dr-novak (cardiology)", "re-wrapped key; byte-identical")
    client["dr-ito"].revoke(record, people["dr-novak"].address)
    reason = _expect(lambda: client["dr-novak"].fetch(record, out / "b.dcm"), AccessDenied)
    results.add_row("fetch after revocation", "dr-novak (cardiology)", f"denied, logged: {reason}")

    meta, envelope = wire.unpack(client["dr-lee"].fetch_bundle(record))
    tampered = bytearray(envelope)
    tampered[len(tampered) // 2] ^= 0x01
    bundle = wire.pack(meta, bytes(tampered))
    reason = _expect(
        lambda: open_bundle(bundle, record, people["dr-lee"], out / "t.dcm"), IntegrityError
    )
    if (out / "t.dcm").exists():
        raise SystemExit("demo failed: a tampered open left plaintext behind")
    results.add_row("open a tampered envelope", "dr-lee (cardiology)", f"caught: {reason}")


def _raise_for(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise error_from_response(response)


def _audit_table(trail: list[dict[str, Any]], people: dict[str, Identity], record: str) -> Table:
    names = {person.address: name for name, person in people.items()}
    table = Table(title=f"audit trail of {record[:20]}… on the ledger")
    for column in ("time", "action", "by", "subject", "allowed", "reason", "evidence"):
        table.add_column(column)
    for entry in trail:
        allowed = entry.get("allowed")
        table.add_row(
            utc_iso(int(entry["timestamp"])),  # ISO 8601 UTC with Z, as every other audit view
            str(entry["action"]),
            names.get(str(entry["actor"]), str(entry["actor"])[:10]),
            names.get(str(entry.get("subject")), str(entry.get("subject") or "")[:10]),
            "" if allowed is None else ("yes" if allowed else "DENIED"),
            str(entry.get("reason") or ""),
            str(entry.get("evidence") or "")[:18] + "…",
        )
    return table


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scanseal-demo-") as scratch:
        os.environ["SCANSEAL_HOME"] = scratch
        results, audit = run(Path(scratch))
    _console.print(results)
    _console.print(audit)
    elapsed = time.monotonic() - started
    _console.print(f"demo finished in {elapsed:.1f} s: every scenario behaved as expected")


if __name__ == "__main__":
    main()
