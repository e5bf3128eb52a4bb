"""Table 4: scalability at 10 to 1,000 concurrent users against one real gateway.

One ``scanseal serve`` (TLS on 127.0.0.1, embedded py-evm chain, embedded block store, batched
ledger: 1,000 entries or 2 s per anchor) serves every level in turn. Its members are 200
registered clinicians (20 in the quick run); up to 200 users each user is a distinct clinician,
above that the users are spread evenly over the clinicians (at 1,000 users each clinician has
five sessions open at once, as from several workstations), because generating an identity costs
about 60 ms of RSA key generation and enrolling one is a transaction. Before the levels, the
clinicians are put in groups of ten and one of each group uploads a *study* (a sealed
512 × 512 16-bit CT slice) for the whole group, so each clinician holds a grant.

At each level every user runs one session on its own TLS connection, all sessions at once:

* every fourth user first uploads a new sealed CT slice, for itself and one colleague;
* every user fetches its group's study twice (signed, single-use requests);
* every tenth user (the sixth of each ten) also tries to fetch another group's study, which
  the ledger must deny: a correct denial counts as a success of the system, reported apart.

What a clinician's own machine would do — sealing the image, signing each request — happens
before the clock starts. Timed: from the first request of the level to the last answer. A
request succeeds when the gateway answers what a correct system answers (an upload: 200 and the
record's CID; a fetch: 200 and a bundle whose manifest hashes to the record's CID; a denied
fetch: 403). Ledger entries are counted from the gateway's batched log and its chain's journal
after the level (each anchor's tree size read from the ``anchorBatch`` calldata); bytes stored
from the store's pack files; bytes served from the answers. Clients and gateway share the
machine's cores.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from scanseal.crypto.identity import Identity
from scanseal.protocol.signed import Domain
from scanseal.transfer.upload import seal_for_upload

from . import _gateway as gw
from ._gateway import Call, GatewayProcess

TITLE = "Table 4: scalability (concurrent users)"
BUDGET_S = 300

FULL_LEVELS = (10, 50, 100, 200, 500, 1000)
QUICK_LEVELS = (5, 20)
CLINICIANS = 200
QUICK_CLINICIANS = 20
GROUP = 10
SLICE = 512  # pixels a side: 512 KiB of 16-bit pixels per image
UPLOAD_EVERY = 4
INTRUDE_EVERY = 10
FETCHES = 2
BATCH = 'mode = "batched"\nbatch_size = 1000\nbatch_seconds = 2\n'

#: The paper's Table 4: users -> (mean response s, success rate, blockchain TPS, IPFS MB/s).
PAPER: dict[int, tuple[float, float, float, float]] = {
    10: (2.9, 1.0, 8.2, 38.7),
    50: (3.4, 1.0, 7.8, 35.2),
    100: (4.1, 0.998, 7.3, 31.8),
    200: (5.8, 0.985, 6.5, 27.4),
    500: (9.2, 0.962, 5.1, 21.6),
}


def run(quick: bool, work: Path) -> dict[str, Any]:
    """Measure every level against one gateway; see the module docstring for the workload."""
    levels = QUICK_LEVELS if quick else FULL_LEVELS
    started = time.perf_counter()
    users = gw.clinicians([f"dr{u:03d}" for u in range(QUICK_CLINICIANS if quick else CLINICIANS)])
    setup = {"identities_s": time.perf_counter() - started}
    gateway = GatewayProcess("table4", work / "gateway", BATCH, members=[u.card for u in users])
    gateway.write()
    rows = []
    try:
        t0 = time.perf_counter()
        gateway.start()
        setup["gateway_start_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        studies = _seed_studies(gateway, users, work / "seed")
        setup["seed_s"] = time.perf_counter() - t0
        for level in levels:
            rows.append(_level(gateway, level, users, studies, work / f"level{level}"))
    finally:
        gateway.stop()
    return {
        "levels": list(levels),
        "rows": rows,
        "claims": _claims(rows),
        "paper": {
            str(k): dict(zip(("mean", "success", "tps", "mbps"), v, strict=True))
            for k, v in PAPER.items()
        },
        "setup": setup,
        "workload": {
            "image": f"{SLICE}x{SLICE} 16-bit CT slice, sealed (ML-KEM-768+X25519)",
            "clinicians": len(users),
            "group": GROUP,
            "upload_every": UPLOAD_EVERY,
            "fetches": FETCHES,
            "intrude_every": INTRUDE_EVERY,
            "ledger": "embedded py-evm, batched (1,000 entries or 2 s per anchor)",
            "store": "embedded",
            "tls": True,
        },
    }


def _seed_studies(gateway: GatewayProcess, users: list[Identity], work: Path) -> list[str]:
    """One study per group of ten, uploaded by its first member for the whole group."""
    assert gateway.domain is not None
    work.mkdir(parents=True)
    calls = []
    for g in range(math.ceil(len(users) / GROUP)):
        group = users[g * GROUP : (g + 1) * GROUP]
        source = gw.synthetic_slice(work / f"study{g}.dcm", SLICE, seed=10_000 + g)
        sealed = seal_for_upload(source, [u.card for u in group], group[0], work)
        calls.append(gw.upload_call(sealed, group[0], gateway.domain))
    sessions = [calls[i::4] for i in range(4)]
    outcomes, _wall = gw.run_sessions(gateway.url, gateway.ssl_context(), sessions)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"seeding the studies failed: HTTP {failed[0].status}")
    return [call.record for call in calls]


def _prepare(
    level: int, users: list[Identity], studies: list[str], domain: Domain, work: Path
) -> list[list[Call]]:
    """Every user's session, sealed and signed before the clock starts. ``studies`` holds
    every group's study (the intruders' targets may belong to groups outside this level)."""
    work.mkdir(parents=True)
    sessions = []
    for u in range(level):
        user = users[u % len(users)]
        calls = []
        if u % UPLOAD_EVERY == 0:
            source = gw.synthetic_slice(work / f"{u}.dcm", SLICE, seed=level * 7919 + u)
            colleague = users[(u + 1) % len(users)]
            calls.append(gw.upload_call(seal_for_upload(source, [colleague.card], user, work),
                                        user, domain))  # fmt: skip
            (work / f"{u}.dcm").unlink()
        own = studies[(u % len(users)) // GROUP]
        calls += [gw.fetch_call(own, user, domain) for _ in range(FETCHES)]
        if u % INTRUDE_EVERY == INTRUDE_EVERY // 2:
            other = studies[((u % len(users)) // GROUP + 1) % len(studies)]
            calls.append(gw.fetch_call(other, user, domain, expect=403))
        sessions.append(calls)
    return sessions


def _level(
    gateway: GatewayProcess, level: int, users: list[Identity], studies: list[str], work: Path
) -> dict[str, Any]:
    assert gateway.domain is not None
    t0 = time.perf_counter()
    sessions = _prepare(level, users, studies, gateway.domain, work)
    prepare_s = time.perf_counter() - t0
    chain_dir = gateway.home / "chain"
    entries_before = len(gw.batch_entries(chain_dir))
    txs_before = len(gw.journal_calls(chain_dir / "journal.jsonl"))
    packs_before = _pack_bytes(gateway.home)
    load = os.getloadavg()[0]
    outcomes, wall = gw.run_sessions(gateway.url, gateway.ssl_context(), sessions)
    entries = gw.batch_entries(chain_dir)[entries_before:]
    packs_after = _pack_bytes(gateway.home)
    anchored, waited = _wait_anchored(chain_dir, entries_before + len(entries))
    txs = gw.journal_calls(chain_dir / "journal.jsonl")[txs_before:]
    names = gw.registry_functions()
    tx_kinds: dict[str, int] = {}
    grants = 0
    for _stamp, data in txs:
        name = gw.call_name(data, names)
        tx_kinds[name] = tx_kinds.get(name, 0) + 1
        grants += gw.granted_pairs(name, data)
    requests = len(outcomes)
    ok = sum(o.ok for o in outcomes)
    denials = [o for o in outcomes if o.expect == 403]
    served = sum(o.received for o in outcomes if o.expect == 200 and o.kind != "upload")
    stored = packs_after - packs_before
    by_kind = {}
    for kind in sorted({o.kind for o in outcomes}):
        mine = [o for o in outcomes if o.kind == kind]
        by_kind[kind] = {
            "requests": len(mine),
            "ok": sum(o.ok for o in mine),
            **gw.latency_summary([o.seconds for o in mine]),
        }
    return {
        "users": level,
        "load_before": load,
        "clinicians": min(level, len(users)),
        "requests": requests,
        "ok": ok,
        "success_rate": ok / requests,
        "denials_planned": len(denials),
        "denials_correct": sum(o.ok for o in denials),
        "statuses": _count(str(o.status) for o in outcomes),
        **gw.latency_summary([o.seconds for o in outcomes]),
        "by_kind": by_kind,
        "wall_s": wall,
        "prepare_s": prepare_s,
        "ledger_entries": len(entries),
        "ledger_entries_by_kind": _count(
            e.kind if e.kind == "record" else ("access allowed" if e.allowed else "access denied")
            for e in entries
        ),
        "ledger_entries_per_s": len(entries) / wall,
        "entries_anchored": anchored,
        "anchor_wait_s": waited,
        "chain_txs": len(txs),
        "chain_txs_by_function": tx_kinds,
        "chain_grants": grants,
        "chain_txs_per_s": len(txs) / wall,
        "bytes_stored": stored,
        "bytes_served": served,
        "storage_mb_per_s": (stored + served) / wall / 1e6,
    }


def _claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summary rows: the paper's figures at 500 users against this run's (the largest
    level when the run had no 500, with no reading)."""
    row = next((r for r in rows if r["users"] == 500), rows[-1])
    at = row["users"] == 500
    users = f"{row['users']:,} concurrent users"
    return [
        {
            "what": f"success rate at {users}",
            "paper": "96.2 % at 500",
            "scanseal": f"{row['success_rate']:.1%}",
            "met": row["success_rate"] >= 0.962 if at else None,
        },
        {
            "what": f"mean response time at {users}",
            "paper": "9.2 s at 500",
            "scanseal": f"{row['mean']:.2f} s (p95 {row['p95']:.2f} s)",
            "met": row["mean"] <= 9.2 if at else None,
        },
        {
            "what": "ledger entries per second, lowest level",
            "paper": "5.1–8.2 TPS",
            "scanseal": f"{min(r['ledger_entries_per_s'] for r in rows):.1f}",
            "met": min(r["ledger_entries_per_s"] for r in rows) >= 8.2,
        },
    ]


def _wait_anchored(chain_dir: Path, target: int, limit: float = 30.0) -> tuple[bool, float]:
    """Wait until an ``anchorBatch`` in the journal covers ``target`` entries."""
    names = gw.registry_functions()
    started = time.perf_counter()
    while True:
        sizes = [
            gw.anchored_size(data)
            for _stamp, data in gw.journal_calls(chain_dir / "journal.jsonl")
            if gw.call_name(data, names) == "anchorBatch"
        ]
        if max(sizes, default=0) >= target:
            return True, time.perf_counter() - started
        if time.perf_counter() - started > limit:
            return False, time.perf_counter() - started
        time.sleep(0.25)


def _pack_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "blocks" / "packs").glob("*.pack"))


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


# --- rendering ----------------------------------------------------------------------------------


def render(result: dict[str, Any], figures: Path) -> str:
    """The table beside the paper's, a reading computed from the numbers, and the plot."""
    rows = result["rows"]
    lines = [
        "| users | requests | mean s (paper) | p50 s | p95 s | success (paper) | denials "
        "correct | ledger entries/s (paper TPS) | chain tx/s | storage MB/s (paper IPFS) | "
        "load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        paper = result["paper"].get(str(row["users"]))
        lines.append(
            f"| {row['users']:,} | {row['requests']:,} | {row['mean']:.2f} "
            f"({_paper(paper, 'mean', '{:.1f}')}) | {row['p50']:.2f} | {row['p95']:.2f} | "
            f"{row['success_rate']:.1%} ({_paper(paper, 'success', '{:.1%}')}) | "
            f"{row['denials_correct']}/{row['denials_planned']} | "
            f"{row['ledger_entries_per_s']:.1f} ({_paper(paper, 'tps', '{:.1f}')}) | "
            f"{row['chain_txs_per_s']:.1f} | "
            f"{row['storage_mb_per_s']:.1f} ({_paper(paper, 'mbps', '{:.1f}')}) | "
            f"{row.get('load_before', float('nan')):.1f} |"
        )
    plot = _plot(rows, result["paper"], figures)
    work = result["workload"]
    text = [
        f"One `scanseal serve` over TLS on 127.0.0.1 ({work['ledger']}; {work['store']} "
        "block store). Each user runs one session on its own connection as one of "
        f"{work['clinicians']} registered clinicians (distinct up to {work['clinicians']} "
        "users, then spread evenly over them: several sessions per clinician); per session: "
        f"every {work['upload_every']}th user uploads a sealed {work['image']}, "
        f"every user makes {work['fetches']} signed fetches of its group's study, and every "
        f"{work['intrude_every']}th user also tries another group's study, which must be "
        "denied (a correct 403 counts as a success and is shown apart). Sealing and signing "
        "happen before the clock, as on each clinician's own machine; clients and gateway "
        "share this machine's cores. Ledger entries are counted from the batched log and "
        "checked to be anchored on chain (tree size read from the `anchorBatch` calldata); "
        "chain tx/s are the grant and anchor transactions the level caused, per second of the "
        "window; storage MB/s is bytes written to the block store plus bytes served, per "
        "second of the window; load is the 1-minute load average as the level started.",
        "",
        "\n".join(lines),
        "",
        _reading(rows, result["paper"]),
        "",
        f"![Response time and success rate vs users]({figures.parent.name}/{figures.name}/"
        f"{plot.name})",
    ]
    return "\n".join(text)


def _paper(paper: dict[str, float] | None, key: str, form: str) -> str:
    return "–" if paper is None else form.format(paper[key])


def _reading(rows: list[dict[str, Any]], paper: dict[str, dict[str, float]]) -> str:
    """What the numbers say, computed from them."""
    worst = min(rows, key=lambda r: r["success_rate"])
    unanchored = [r["users"] for r in rows if not r["entries_anchored"]]
    wrong_denials = sum(r["denials_planned"] - r["denials_correct"] for r in rows)
    top = rows[-1]
    compared = [r for r in rows if str(r["users"]) in paper]
    slower = [r for r in compared if r["mean"] > paper[str(r["users"])]["mean"]]
    parts = [
        "every request at every level got the correct answer"
        if worst["success_rate"] == 1.0
        else f"the lowest success rate is {worst['success_rate']:.1%} at {worst['users']:,} users",
        f"the mean response is below the paper's at {len(compared) - len(slower)} of "
        f"{len(compared)} levels"
        + (
            " (above it at "
            + ", ".join(
                f"{r['users']:,} users: {r['mean']:.1f} s vs {paper[str(r['users'])]['mean']} s"
                for r in slower
            )
            + ")"
            if slower
            else ""
        ),
        f"at {top['users']:,} users the mean response is {top['mean']:.2f} s "
        f"(p95 {top['p95']:.2f} s) and the ledger takes {top['ledger_entries_per_s']:.0f} "
        "entries/s",
        "every planned denial was denied"
        if wrong_denials == 0
        else f"{wrong_denials} planned denials were not answered 403",
        "every level's entries were anchored on chain"
        if not unanchored
        else f"entries not anchored within 30 s at {unanchored} users",
    ]
    for row in rows:
        lost, expired = row["statuses"].get("0", 0), row["statuses"].get("409", 0)
        if lost or expired:
            parts.append(
                f"at {row['users']:,} users {lost} requests got no answer (connection error or "
                f"the clients' 300 s timeout) and {expired} were refused as expired (409: they "
                "were signed before the clock, and the gateway accepts a request for 300 s)"
            )
    text = "; ".join(parts)
    return "Reading: " + text[0].upper() + text[1:] + "."


def _plot(rows: list[dict[str, Any]], paper: dict[str, dict[str, float]], figures: Path) -> Path:
    users = [r["users"] for r in rows]
    known = sorted(int(k) for k in paper)
    fig, left, right = gw.panels("Table 4: one gateway under concurrent users")
    left.plot(users, [r["mean"] for r in rows], "o-", label="ScanSeal mean")
    left.plot(users, [r["p95"] for r in rows], "s--", label="ScanSeal p95")
    left.plot(known, [paper[str(k)]["mean"] for k in known], "^:", label="paper mean")
    left.set_xscale("log")
    left.set_xlabel("concurrent users")
    left.set_ylabel("response time (s)")
    left.legend(fontsize=8)
    right.plot(users, [100 * r["success_rate"] for r in rows], "o-", label="ScanSeal")
    right.plot(known, [100 * paper[str(k)]["success"] for k in known], "^:", label="paper")
    right.set_xscale("log")
    right.set_xlabel("concurrent users")
    right.set_ylabel("success rate (%)")
    right.set_ylim(min(90.0, *(100 * r["success_rate"] - 2 for r in rows)), 100.5)
    right.legend(fontsize=8)
    return gw.save(fig, figures, "table4_scalability.png")
