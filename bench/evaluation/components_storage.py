"""Component: the embedded block store and a js-ipfs node (bench/storage.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation._common import (
    bench_script,
    claim,
    last_json,
    num,
    pct,
    shown_command,
    table,
    verdict,
)

TITLE = "Components: storage"
BUDGET_S = 80


def run(quick: bool, work: Path) -> dict[str, Any]:
    if quick:
        args = ["--size-mib", "8", "--repeat", "1", "--no-node"]
    else:
        args = ["--size-mib", "128", "--node-mib", "50", "--repeat", "3"]
    _json, stdout, seconds = bench_script("storage.py", args, None, timeout=600)
    return {
        "command": shown_command("storage.py", args), "seconds": round(seconds, 1),
        **last_json(stdout),
    }  # fmt: skip


def render(result: dict[str, Any], figures: Path) -> str:
    emb, node = result.get("embedded", {}), result.get("jsipfs")
    rows = [
        ("SHA-256 floor (in memory)", num(emb.get("sha256_floor_mbps"), 0), "100 %"),
        ("`EmbeddedStore.put`", num(emb.get("put_mbps"), 0), pct(emb.get("put_share_of_floor"), 0)),
        ("`EmbeddedStore.get` (every block re-hashed)", num(emb.get("get_mbps"), 0),
         pct(emb.get("get_share_of_floor"), 0)),
    ]  # fmt: skip
    met = min(emb.get("put_share_of_floor", 0), emb.get("get_share_of_floor", 0)) >= 0.7
    lines = [
        f"Command: `{result['command']}`; each figure the best of the repeats.",
        "",
        f"Embedded store, {num(emb.get('size_mib'), 0)} MiB of random bytes:",
        "",
        table(["measure", "MB/s", "share of floor"], rows),
        "",
        f"Target put and get ≥ 70 % of the SHA-256 floor: {verdict(met)}.",
    ]
    if node:
        lines += [
            "",
            f"js-ipfs node, {num(node.get('size_mib'), 0)} MiB, one daemon on 127.0.0.1:",
            "",
            table(
                ["measure", "MB/s"],
                [
                    ("js-ipfs `add` (CIDv1, raw leaves)", num(node.get("jsipfs_add_mbps"), 0)),
                    ("js-ipfs `cat`", num(node.get("jsipfs_cat_mbps"), 0)),
                    (
                        "ScanSeal verified get from the node",
                        num(node.get("verified_get_from_node_mbps"), 0),
                    ),
                ],
            ),
        ]
    lines += ["", "Design and past experiments: docs/STORAGE.md."]
    return "\n".join(lines)


def claims(result: dict[str, Any]) -> list[dict[str, Any]]:
    """ScanSeal's own target for the embedded store (the paper has none)."""
    emb = result.get("embedded", {})
    put, get = emb.get("put_share_of_floor", 0.0), emb.get("get_share_of_floor", 0.0)
    return [claim("embedded store put / get, share of SHA-256 floor (target ≥ 70 %)", "–",
                  f"{pct(put, 0)} / {pct(get, 0)}", min(put, get) >= 0.7)]  # fmt: skip
