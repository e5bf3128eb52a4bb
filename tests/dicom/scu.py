"""A pynetdicom SCU for the tests: push files or data sets to an SCP, return the statuses."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE

from scanseal.integrity.pixels import pixel_digest


def push(
    port: int, items: Sequence[Path | Dataset], *, called: str = "SCANSEAL", calling: str = "CT1"
) -> list[int]:
    """C-STORE every item on one association; each item's own SOP class and transfer syntax."""
    ae = AE(ae_title=calling)
    for item in items:
        ds = item if isinstance(item, Dataset) else pydicom.dcmread(item, stop_before_pixels=True)
        ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(item).Status) for item in items]
    finally:
        assoc.release()


def registered(url: str, timeout: float = 120.0) -> None:
    """Wait until the gateway at ``url`` registered every instance its SCP acknowledged: its
    spool is empty in ``/v1/health`` (with ``acknowledge = "registered"``, at once)."""
    deadline = time.monotonic() + timeout
    while True:
        scp = httpx.get(f"{url}/v1/health", timeout=10).json()["scp"]
        depth = scp.get("spool", {"depth": 0})["depth"]
        if not depth:
            return
        assert time.monotonic() < deadline, f"{depth} instance(s) still spooled"
        time.sleep(0.05)


def count(db: Path, table: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def same_instance(received: Path, original: Path) -> None:
    """Pixel digest and every data set element equal (the file meta may be rewritten)."""
    assert pixel_digest(received) == pixel_digest(original)
    assert elements(received) == elements(original)


def elements(path: Path) -> dict[str, object]:
    """Every element as DICOM JSON, less what transfers may drop by design (DICOM PS3.5 7.2 and
    7.5: group lengths and data set trailing padding carry no information)."""
    values = pydicom.dcmread(path).to_json_dict()
    return {k: v for k, v in values.items() if not k.endswith("0000") and k != "FFFCFFFC"}


def assert_verdicts_logged(
    log: Path, records: dict[str, str], flagged: Path, clean: Path, calling: str
) -> None:
    """The gateway's log has one line per instance received from ``calling``, naming its record
    (``records``: SOP Instance UID → manifest CID) and its verdict: WARNING for ``flagged``,
    INFO for ``clean``."""
    lines = log.read_text().splitlines()
    for path, level, said in ((flagged, "WARNING", "flagged"), (clean, "INFO", "not flagged")):
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        (line,) = [line for line in lines if f"instance {uid} " in line]
        said_by = f" {level} scanseal.dicom.scp: instance {uid} from {calling} stored as record "
        assert said_by + f"{records[uid]}, " in line
        assert f"{said} by the tamper screen at sealing (score " in line
