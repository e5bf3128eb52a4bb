"""``make demo``: ScanSeal end to end on one machine, with real sample DICOM studies.

Three departments (radiology, cardiology, oncology) each get clinicians with identities. The
radiology gateway seals real CT and MR images shipped with pydicom for a cardiologist; the demo
then shows an authorized open, a stranger refused, and a tampered envelope caught — each outcome
checked, so the demo fails loudly if ScanSeal misbehaves. Everything lives in a temporary
SCANSEAL_HOME that is removed at the end.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydicom.data import get_testdata_file
from rich.console import Console
from rich.table import Table

from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import IntegrityError, NotARecipient, ScanSealError
from scanseal.storage import BlobStore, EmbeddedStore
from scanseal.transfer.local import open_sealed, seal_file, verify_sealed
from scanseal.transfer.stored import fetch_sealed, publish_manifest

_console = Console(highlight=False)
_DEPARTMENTS = {
    "radiology": ["rad-gateway", "dr-ito"],
    "cardiology": ["dr-lee", "dr-novak"],
    "oncology": ["dr-okafor"],
}
_SAMPLES = ["CT_small.dcm", "MR_small.dcm"]
_PASSPHRASE = "demo passphrase, not for production"  # noqa: S105 - a throwaway demo keystore


def _expect_refusal(action: Callable[[], object], expected: type[ScanSealError]) -> str:
    """Run ``action``, which must fail with ``expected``; return its one-line reason."""
    try:
        action()
    except expected as error:
        return error.reason
    raise SystemExit(f"demo failed: expected {expected.__name__}, but the action succeeded")


def _identities(keystore: Keystore) -> dict[str, Identity]:
    with _console.status("creating department identities"):
        return {
            name: keystore.create(name, _PASSPHRASE)
            for members in _DEPARTMENTS.values()
            for name in members
        }


def _seal_and_open(
    source: Path,
    gateway: Identity,
    reader: Identity,
    store: BlobStore,
    workdir: Path,
    results: Table,
) -> None:
    """Seal into the store, then open by the manifest CID alone, as a recipient elsewhere."""
    sealed = seal_file(
        source, [reader.card], gateway, workdir / f"{source.stem}.sseal", store=store
    )
    receipt = publish_manifest(sealed, store)
    results.add_row(f"seal {source.name}", gateway.name, f"manifest CID {receipt[:24]}…")
    inbox = workdir / f"inbox-{source.stem}"
    inbox.mkdir()
    opened = open_sealed(fetch_sealed(receipt, store, inbox), reader, inbox / source.name)
    same = opened.path.read_bytes() == source.read_bytes()
    outcome = "byte-identical" if same else "MISMATCH"
    results.add_row(f"open {source.name} by CID", reader.name, outcome)
    if not same:
        raise SystemExit("demo failed: opened file differs from the original")


def run(workdir: Path) -> Table:
    """Run every scenario in ``workdir``; returns the results table."""
    people = _identities(Keystore(workdir / "keys"))
    gateway, lee, okafor = people["rad-gateway"], people["dr-lee"], people["dr-okafor"]
    results = Table(title="ScanSeal demo", show_lines=False)
    for column in ("scenario", "who", "outcome"):
        results.add_column(column)
    with EmbeddedStore(workdir / "blocks") as store:
        for sample in _SAMPLES:
            source = Path(str(get_testdata_file(sample)))
            _seal_and_open(source, gateway, lee, store, workdir, results)
    envelope = workdir / "CT_small.sseal"
    report = verify_sealed(envelope, lee)
    results.add_row("verify CT_small", lee.name, f"{len(report.checks)} checks passed")
    reason = _expect_refusal(
        lambda: open_sealed(envelope, okafor, workdir / "stolen.dcm"), NotARecipient
    )
    results.add_row("open by a non-recipient", okafor.name, f"refused: {reason[:60]}…")
    tampered = bytearray(envelope.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    envelope.write_bytes(bytes(tampered))
    reason = _expect_refusal(
        lambda: open_sealed(envelope, lee, workdir / "tampered.dcm"), IntegrityError
    )
    leftover = (workdir / "tampered.dcm").exists()
    results.add_row("open a tampered envelope", lee.name, f"caught: {reason}")
    if leftover:
        raise SystemExit("demo failed: a tampered open left plaintext behind")
    return results


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="scanseal-demo-") as scratch:
        os.environ["SCANSEAL_HOME"] = scratch
        table = run(Path(scratch))
    _console.print(table)
    _console.print("demo finished: every scenario behaved as expected")


if __name__ == "__main__":
    main()
