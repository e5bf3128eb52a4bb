"""Table 5's client: one process that screens, seals, uploads, fetches and opens a study.

    python bench/evaluation/_client.py GATEWAY_URL CA HOME STUDY_DIR OUT_DIR

Phase "detector": the tamper detector loads and screens every image (the work sealing's default
screen does), timed with this process's CPU clock. Phase "client": each image is sealed (with
the screen) and uploaded as the sender, then fetched and opened as reader0. Prints one JSON
object: CPU seconds, RSS and disk bytes (/proc/self/io) per phase, and the phase's wall time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _proc() -> dict[str, float]:
    """This process's CPU seconds, current RSS (MB) and bytes read and written on disk."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {
        "cpu_s": time.process_time(),
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
        "read_mb": int(io["read_bytes"]) / 1e6,
        "write_mb": int(io["write_bytes"]) / 1e6,
        "wall_s": time.perf_counter(),
    }


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    out = {k: after[k] - before[k] for k in ("cpu_s", "read_mb", "write_mb", "wall_s")}
    out.update(rss_growth_mb=after["rss_mb"] - before["rss_mb"], peak_rss_mb=after["peak_rss_mb"])
    return out


def main() -> None:
    from scanseal.client import GatewayClient
    from scanseal.crypto.identity import Keystore
    from scanseal.detect import Detector

    url = sys.argv[1]
    ca, home, study_dir, out = (Path(a) for a in sys.argv[2:6])
    study = sorted(study_dir.glob("*.dcm"))
    keystore = Keystore(home / "keys")
    sender = keystore.load("sender", "evaluation passphrase")
    reader = keystore.load("reader0", "evaluation passphrase")
    result: dict[str, Any] = {"images": len(study)}

    start = _proc()
    detector = Detector(threads=1)
    for path in study:
        detector.screen(path)
    result["detector"] = _delta(start, _proc())

    start = _proc()
    records = []
    with GatewayClient(url, sender, ca=ca) as client:
        for path in study:
            records.append(str(client.send(path, [reader.card], out)["manifest_cid"]))
    with GatewayClient(url, reader, ca=ca) as client:
        for record, path in zip(records, study, strict=True):
            opened = client.fetch(record, out / f"opened-{path.name}")
            if opened.path.read_bytes() != path.read_bytes():
                raise SystemExit(f"{path.name} came back different")
    result["client"] = _delta(start, _proc())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
