"""Component: sealing and opening a large DICOM against the primitives floor (bench/seal.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation._common import bench_script, claim, num, pct, shown_command, table, verdict

TITLE = "Components: sealing and opening"
BUDGET_S = 90


def run(quick: bool, work: Path) -> dict[str, Any]:
    args = ["--size-mib", "16" if quick else "1024"]
    figures, _stdout, seconds = bench_script("seal.py", [*args, "--json", str(work / "s.json")],
                                             work / "s.json", timeout=600)  # fmt: skip
    return {**figures, "command": shown_command("seal.py", args), "seconds": round(seconds, 1)}


def render(result: dict[str, Any], figures: Path) -> str:
    r = result
    rows = [
        (step, num(r.get(f"{step}_MBps"), 0), num(r.get(f"{step}_floor_MBps"), 0),
         pct(r.get(f"{step}_vs_floor"), 0), num(r.get(f"{step}_peak_rss_MB"), 0))
        for step in ("seal", "open")
    ]  # fmt: skip
    met = all(r.get(f"{s}_vs_floor", 0) >= 0.7 for s in ("seal", "open")) and all(
        r.get(f"{s}_peak_rss_MB", 1e9) <= 150 for s in ("seal", "open")
    )
    return "\n".join(
        [
            f"Command: `{r['command']}` (input {r.get('input_bytes', 0):,} bytes, "
            f"{r.get('frames')} frames of 512×512×16 bit, random pixels, in /dev/shm; best of two "
            "runs, each in a fresh process whose peak RSS the kernel reports).",
            "",
            table(["step", "MB/s", "floor MB/s", "vs floor", "peak RSS MB"], rows),
            "",
            f"Primitives alone: SHA-256 {num(r.get('sha256_MBps'), 0)} MB/s, AES-256-GCM "
            f"{num(r.get('aes256gcm_MBps'), 0)} MB/s. Targets (each step ≥ 70 % of its floor, "
            f"peak RSS ≤ 150 MB for 1 GiB): {verdict(met)}. Why the floor is defined this way: "
            "docs/FORMAT.md and the comments in bench/seal.py.",
        ]
    )


def claims(result: dict[str, Any]) -> list[dict[str, Any]]:
    """ScanSeal's own targets (the paper has none for sealing)."""
    rows = []
    for step in ("seal", "open"):
        share, rss = result.get(f"{step}_vs_floor", 0.0), result.get(f"{step}_peak_rss_MB", 0.0)
        rows.append(claim(f"{step}, share of the primitives floor (target ≥ 70 %)", "–",
                          f"{pct(share, 0)}, peak RSS {num(rss, 0)} MB",
                          share >= 0.7 and rss <= 150))  # fmt: skip
    return rows
