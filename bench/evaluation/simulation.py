"""Section 5.5: a hospital network of three departments over a month, simulated on one machine.

Three department gateways (radiology, cardiology, oncology: three ``scanseal serve`` processes,
each with its own home, keys, state and TLS certificate) share one anvil chain, on which this
module deploys the ImageRegistry and makes each gateway an admin, and store through the
replicated store into several js-ipfs nodes (every object on every node). The ledger runs in
per-record mode, the paper's design: every record, grant, revocation and access attempt is a
transaction, so the gas figures are the paper's kind of cost.

The clinicians are members of their department's gateway. A seeded schedule compresses a month
into minutes: a daily volume with quieter weekends; for each image a sender and a recipient
(mostly in another department); consultations (the owner grants a colleague, who fetches),
some of them revoked days later; follow-up fetches; and the planned attacks — fetches by
clinicians or strangers without a grant, a revoked consultant trying again, and captured
requests replayed. Each simulated day runs in phases (send; fetch and grant; consult,
follow-up and revoke; attacks), the events of a phase concurrently on a pool of client threads,
each event on its own connection to the image's gateway, as its clinician would. A transfer
(an image reaching an authorized clinician: first fetch, consultation, follow-up) counts only
when the client opened it with every check of docs/PROTOCOL.md §4.3; an attack counts as
blocked only when the gateway refused it with the expected error (403 or 409).

Gas, calldata and event bytes come from the chain's receipts and transactions; contract
storage from the node's own state dump before and after; IPFS bytes from each node's
``repo/stat`` and replicas from each node's pins.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from scanseal.crypto.identity import Identity
from scanseal.errors import AccessDenied, ScanSealError
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.ledger.devnode import ANVIL_FUNDER_KEY, running_anvil
from scanseal.service import GatewayClient
from scanseal.service.client import open_bundle, seal_for_upload
from scanseal.storage import KuboNode

from . import _gateway as gw
from ._gateway import GatewayProcess

TITLE = "Section 5.5: three departments, one month, simulated"

DEPARTMENTS = ("radiology", "cardiology", "oncology")
#: Image kinds: (name, pixels a side, share of the images).
KINDS = (("CT", 512, 0.5), ("MR", 256, 0.4), ("DX", 768, 0.1))
CROSS_DEPARTMENT = 0.7
CONSULT = 0.12
REVOKE = 0.25
FOLLOW_UP = 0.10
REPLAY = 0.2  # share of the follow-up requests an eavesdropper captures and replays
INTRUDE = 0.02  # fetches without a grant, per image
WEEKEND = 0.35
WORKERS = 6
FUNDING = 100 * 10**18

PAPER: dict[str, Any] = {
    "departments": 3, "ethereum_nodes": 3, "ipfs_nodes": 5, "clinicians": 50,
    "images": 1000, "days": 30, "transfers": 1247, "successful": 1243,
    "success_rate": 0.997, "failed": 4, "blocked": 23, "avg_transfer_s": 3.1,
    "ipfs_bytes": 4.8e9, "chain_bytes": 2.4e6, "cost_usd": 12.5,
}  # fmt: skip


@dataclass(frozen=True)
class Scale:
    clinicians: int
    images: int
    days: int
    nodes: int
    seed: int = 2026


FULL = Scale(clinicians=50, images=1000, days=30, nodes=3)
QUICK = Scale(clinicians=6, images=30, days=3, nodes=2)


# --- the schedule ---------------------------------------------------------------------------------


@dataclass
class Event:
    """One thing a clinician does on a simulated day; ``phase`` orders a day's events."""

    kind: str
    day: int
    phase: int
    image: int
    actor: int  # clinician index, or -1 - n for stranger n
    other: int = -1  # recipient of a send, grantee of a grant or revocation


@dataclass
class Image:
    index: int
    day: int
    sender: int
    recipient: int
    kind: str
    size: int
    record: str = ""
    envelope: str = ""
    gateway: int = 0


def department(clinician: int) -> int:
    return clinician % len(DEPARTMENTS)


def schedule(scale: Scale) -> tuple[list[Image], list[Event]]:
    """The month, seeded: images with their senders and recipients, and every event."""
    rng = random.Random(scale.seed)
    weights = [WEEKEND if day % 7 in (5, 6) else 1.0 for day in range(scale.days)]
    days = sorted(rng.choices(range(scale.days), weights=weights, k=scale.images))
    images: list[Image] = []
    events: list[Event] = []
    involvement: list[set[int]] = []
    for index, day in enumerate(days):
        sender = rng.randrange(scale.clinicians)
        cross = rng.random() < CROSS_DEPARTMENT
        recipient = _pick(rng, scale.clinicians, {sender}, cross, department(sender))
        name, size = _kind(rng)
        images.append(Image(index, day, sender, recipient, name, size, gateway=department(sender)))
        events += [Event("send", day, 1, index, sender, recipient),
                   Event("fetch", day, 2, index, recipient)]  # fmt: skip
        involved = {sender, recipient}
        if rng.random() < CONSULT and scale.clinicians > 2:
            consultant = _pick(rng, scale.clinicians, involved, True, department(sender))
            involved.add(consultant)
            events += [Event("grant", day, 2, index, sender, consultant),
                       Event("consult", day, 3, index, consultant)]  # fmt: skip
            if rng.random() < REVOKE and day + 1 < scale.days:
                later = rng.randint(day + 1, min(day + 5, scale.days - 1))
                events += [Event("revoke", later, 3, index, sender, consultant),
                           Event("revoked attempt", later, 4, index, consultant)]  # fmt: skip
        if rng.random() < FOLLOW_UP:
            later = rng.randint(day, min(day + 7, scale.days - 1))
            events.append(Event("follow-up", later, 3, index, recipient))
        involvement.append(involved)
    events += _attacks(rng, scale, images, events, involvement)
    events.sort(key=lambda e: (e.day, e.phase))
    return images, events


def _attacks(
    rng: random.Random,
    scale: Scale,
    images: list[Image],
    events: list[Event],
    involvement: list[set[int]],
) -> list[Event]:
    """The planned attacks, by count (at least one of each kind, so a small run has them too):
    fetches by clinicians or strangers with no grant, and replays of captured follow-ups."""
    attacks = []
    count = max(1, round(INTRUDE * scale.images))
    for n, image in enumerate(rng.sample(images, min(count, len(images)))):
        outsiders = [c for c in range(scale.clinicians) if c not in involvement[image.index]]
        # about a third are strangers, not registered at all
        stranger = n % 3 == 2 or not outsiders
        intruder = -1 - n if stranger else rng.choice(outsiders)
        attacks.append(Event("unauthorized", image.day, 4, image.index, intruder))
    follow_ups = [e for e in events if e.kind == "follow-up"]
    for e in rng.sample(follow_ups, min(len(follow_ups), max(1, round(REPLAY * len(follow_ups))))):
        attacks.append(Event("replay", e.day, 4, e.image, e.actor))
    return attacks


def _pick(rng: random.Random, n: int, avoid: set[int], cross: bool, dept: int) -> int:
    """A clinician not in ``avoid``, in another department (``cross``) or the same one."""
    pool = [c for c in range(n) if c not in avoid and (department(c) != dept) == cross]
    return rng.choice(pool or [c for c in range(n) if c not in avoid])


def _kind(rng: random.Random) -> tuple[str, int]:
    roll, total = rng.random(), 0.0
    for name, size, share in KINDS:
        total += share
        if roll < total:
            return name, size
    return KINDS[-1][0], KINDS[-1][1]


ATTACKS = {"unauthorized": 403, "revoked attempt": 403, "replay": 409}
TRANSFERS = ("fetch", "consult", "follow-up")


# --- running it -----------------------------------------------------------------------------------


@dataclass
class Done:
    """What one event gave: ok (a transfer opened, an attack refused as expected), seconds."""

    event: Event
    ok: bool
    seconds: float
    error: str = ""
    bytes: int = 0


@dataclass
class World:
    work: Path
    gateways: list[GatewayProcess]
    people: list[Identity]
    images: list[Image]
    strangers: dict[int, Identity] = field(default_factory=dict)
    captured: dict[int, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def who(self, actor: int) -> Identity:
        if actor >= 0:
            return self.people[actor]
        with self.lock:
            if actor not in self.strangers:
                self.strangers[actor] = Identity.generate(f"stranger{-1 - actor}")
            return self.strangers[actor]

    def client(self, actor: int, image: Image) -> GatewayClient:
        gateway = self.gateways[image.gateway]
        return GatewayClient(gateway.url, self.who(actor), ca=gateway.ca, timeout=120)


def run(quick: bool, work: Path) -> dict[str, Any]:
    """Run the month; see the module docstring."""
    scale = QUICK if quick else FULL
    images, events = schedule(scale)
    clock = _Clock()
    with ExitStack() as stack:
        url = stack.enter_context(running_anvil())
        nodes = stack.enter_context(_ipfs_nodes(work / "ipfs", scale.nodes))
        clock.lap("anvil and js-ipfs nodes")
        empty = _repo_stats(nodes)
        ledger = stack.enter_context(_deployer(url, work / "deployer"))
        people = gw.clinicians([f"dr{c:02d}" for c in range(scale.clinicians)])
        clock.lap("contract and identities")
        gateways = _gateways(work, url, ledger, nodes, people)
        stack.callback(lambda: [g.stop() for g in gateways])
        _start_all(gateways)
        clock.lap("gateways")
        state_before = _contract_storage(url, ledger.address)
        first_block = int(ledger.chain.w3.eth.block_number)
        world = World(work, gateways, people, images)
        done, day_blocks, day_walls = _play(world, events, scale.days, ledger)
        for gateway in gateways:
            gateway.stop()  # per-record mode: nothing pending, but close cleanly before reading
        chain = _chain_accounting(url, first_block, day_blocks)
        chain["contract_storage_bytes"] = _contract_storage(url, ledger.address) - state_before
        clock.lap("month")
        objects = [cid for i in images for cid in (i.record, i.envelope) if cid]
        ipfs = _ipfs_accounting(nodes, objects, empty)
        clock.lap("accounting")
    return _summary(scale, images, done, chain, ipfs, day_walls, clock.laps)


class _Clock:
    """Seconds spent in each step of the run, for the report."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


@contextmanager
def _ipfs_nodes(base: Path, count: int) -> Iterator[list[str]]:
    """``count`` js-ipfs daemons started side by side; stopped by PID on the way out."""
    sys.path.insert(0, str(gw.ROOT / "tests"))
    from storage import jsipfs

    if (reason := jsipfs.missing_reason()) is not None:
        raise RuntimeError(reason)
    base.mkdir(parents=True)
    daemons: list[Any] = []
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(jsipfs.start, base, f"node{i}") for i in range(count)]
            for future in futures:
                daemons.append(future.result())
        yield [daemon.url for daemon in daemons]
    finally:
        for daemon in daemons:
            daemon.stop()


@contextmanager
def _deployer(url: str, state: Path) -> Iterator[Ledger]:
    """Deploy the ImageRegistry on anvil with anvil's funded development account."""
    config = LedgerConfig(backend="jsonrpc", url=url, state_dir=state, funder_key=None)
    ledger = Ledger.open(config, deployer=Account.from_key(ANVIL_FUNDER_KEY))
    try:
        yield ledger
    finally:
        ledger.close()


def _gateways(
    work: Path, url: str, ledger: Ledger, nodes: list[str], people: list[Identity]
) -> list[GatewayProcess]:
    """Three gateways: admins of the shared contract, funded, each with its members."""
    owner = Account.from_key(ANVIL_FUNDER_KEY)
    storage = (
        f'[storage]\nbackend = "kubo"\nnodes = {json.dumps(nodes)}\n'
        f"min_replicas = {len(nodes)}\ntimeout = 60\n"
    )
    chain = f'backend = "jsonrpc"\nurl = "{url}"\ncontract = "{ledger.address}"\n'
    gateways = []
    for d, name in enumerate(DEPARTMENTS):
        members = [p.card for c, p in enumerate(people) if department(c) == d]
        gateway = GatewayProcess(name, work / name, chain + 'mode = "per-record"\n', storage,
                                 members)  # fmt: skip
        account = gateway.write().address
        ledger.set_admin(owner, account)
        sent = ledger.chain.send(owner, {"to": account, "value": FUNDING, "gas": 21000})
        ledger.chain.wait(sent)
        gateways.append(gateway)
    return gateways


def _start_all(gateways: list[GatewayProcess]) -> None:
    with ThreadPoolExecutor(max_workers=len(gateways)) as pool:
        for future in [pool.submit(g.start) for g in gateways]:
            future.result()


def _play(
    world: World, events: list[Event], days: int, ledger: Ledger
) -> tuple[list[Done], list[int], list[float]]:
    """Every day, phase after phase; returns the outcomes, the last block of each day and
    each day's wall time."""
    done: list[Done] = []
    day_blocks, day_walls = [], []
    actions: dict[str, Callable[[World, Event], Done]] = {
        "send": _send, "fetch": _fetch, "consult": _fetch, "follow-up": _follow_up,
        "grant": _grant, "revoke": _revoke, "unauthorized": _attack,
        "revoked attempt": _attack, "replay": _replay,
    }  # fmt: skip
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for day in range(days):
            started = time.perf_counter()
            for phase in (1, 2, 3, 4):
                batch = [e for e in events if e.day == day and e.phase == phase]
                done += list(pool.map(lambda e: _timed(actions[e.kind], world, e), batch))
            day_walls.append(time.perf_counter() - started)
            day_blocks.append(int(ledger.chain.w3.eth.block_number))
    return done, day_blocks, day_walls


def _timed(action: Callable[[World, Event], Done], world: World, event: Event) -> Done:
    """Run one event; an unexpected error is a failed event, never a crashed run."""
    try:
        return action(world, event)
    except ScanSealError as error:
        return Done(event, False, 0.0, f"{type(error).__name__}: {error}")
    except Exception as error:  # a client-side crash is a failure of the run, recorded
        return Done(event, False, 0.0, f"{type(error).__name__}: {error}")


def _send(world: World, event: Event) -> Done:
    image = world.images[event.image]
    scratch = Path(tempfile.mkdtemp(dir=world.work))
    source = gw.synthetic_slice(scratch / f"{image.index}.dcm", image.size, image.index,
                                image.kind)  # fmt: skip
    sender = world.who(event.actor)
    sealed = seal_for_upload(source, [world.people[image.recipient].card], sender, scratch)
    with world.client(event.actor, image) as client:
        started = time.perf_counter()
        answer = client.upload(sealed)
        seconds = time.perf_counter() - started
    image.record = str(answer["manifest_cid"])
    image.envelope = str(answer["envelope_cid"])
    return Done(event, True, seconds, bytes=sealed.envelope.stat().st_size)


def _fetch(world: World, event: Event) -> Done:
    """Fetch and open, every check included: a transfer."""
    image = world.images[event.image]
    output = Path(tempfile.mkdtemp(dir=world.work)) / "image.dcm"
    with world.client(event.actor, image) as client:
        started = time.perf_counter()
        bundle = client.fetch_bundle(image.record)
        open_bundle(bundle, image.record, world.who(event.actor), output)
        seconds = time.perf_counter() - started
    output.unlink()
    return Done(event, True, seconds, bytes=len(bundle))


def _follow_up(world: World, event: Event) -> Done:
    """A later fetch whose signed request an eavesdropper captures (for a replay)."""
    image = world.images[event.image]
    gateway = world.gateways[image.gateway]
    with world.client(event.actor, image) as client:
        headers = client.signed("fetch", image.record)
    with world.lock:
        world.captured[event.image] = headers
    output = Path(tempfile.mkdtemp(dir=world.work)) / "image.dcm"
    started = time.perf_counter()
    answer = _raw_fetch(gateway, image.record, headers)
    if answer.status_code != 200:
        return Done(event, False, time.perf_counter() - started, f"HTTP {answer.status_code}")
    open_bundle(answer.content, image.record, world.who(event.actor), output)
    seconds = time.perf_counter() - started
    output.unlink()
    return Done(event, True, seconds, bytes=len(answer.content))


def _raw_fetch(gateway: GatewayProcess, record: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(verify=gateway.ssl_context(), timeout=120) as http:
        return http.get(f"{gateway.url}/v1/records/{record}", headers=headers)


def _grant(world: World, event: Event) -> Done:
    image = world.images[event.image]
    with world.client(event.actor, image) as client:
        started = time.perf_counter()
        client.grant(image.record, world.people[event.other].card)
    return Done(event, True, time.perf_counter() - started)


def _revoke(world: World, event: Event) -> Done:
    image = world.images[event.image]
    with world.client(event.actor, image) as client:
        started = time.perf_counter()
        client.revoke(image.record, world.people[event.other].address)
    return Done(event, True, time.perf_counter() - started)


def _attack(world: World, event: Event) -> Done:
    """A fetch by someone without a (current) grant: blocked when the gateway says 403."""
    image = world.images[event.image]
    started = time.perf_counter()
    with world.client(event.actor, image) as client:
        try:
            client.fetch_bundle(image.record)
        except AccessDenied as refused:
            return Done(event, True, time.perf_counter() - started, str(refused))
    return Done(event, False, time.perf_counter() - started, "the record was released")


def _replay(world: World, event: Event) -> Done:
    """The captured request of a follow-up, sent again: blocked when the gateway says 409."""
    image = world.images[event.image]
    headers = world.captured.get(event.image)
    if headers is None:
        return Done(event, False, 0.0, "nothing was captured (the follow-up failed)")
    started = time.perf_counter()
    answer = _raw_fetch(world.gateways[image.gateway], image.record, headers)
    blocked = answer.status_code == 409 and "ReplayDetected" in answer.text
    return Done(event, blocked, time.perf_counter() - started, f"HTTP {answer.status_code}")


# --- accounting -----------------------------------------------------------------------------------


def _rpc(url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """A JSON-RPC batch; the results in order."""
    body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    answers = httpx.post(url, json=body, timeout=120).json()
    by_id = {a["id"]: a for a in answers}
    if any("error" in a for a in answers):
        raise RuntimeError(f"node refused a call: {next(a for a in answers if 'error' in a)}")
    return [by_id[i]["result"] for i in range(len(calls))]


def _chain_accounting(url: str, first: int, day_blocks: list[int]) -> dict[str, Any]:
    """Gas, fees, calldata and event bytes of every transaction the month mined, by function
    and by day, from the node's blocks and receipts."""
    names = gw.registry_functions()
    last = day_blocks[-1] if day_blocks else first
    gas_by_function: dict[str, int] = {}
    count_by_function: dict[str, int] = {}
    gas_by_day = [0] * len(day_blocks)
    totals = {"gas": 0, "fee_wei": 0, "calldata_bytes": 0, "event_bytes": 0, "txs": 0}
    numbers = list(range(first + 1, last + 1))
    for start in range(0, len(numbers), 200):
        chunk = numbers[start : start + 200]
        receipts = _rpc(url, [("eth_getBlockReceipts", [hex(n)]) for n in chunk])
        blocks = _rpc(url, [("eth_getBlockByNumber", [hex(n), True]) for n in chunk])
        for number, block, block_receipts in zip(chunk, blocks, receipts, strict=True):
            day = next(d for d, end in enumerate(day_blocks) if number <= end)
            for tx, receipt in zip(block["transactions"], block_receipts, strict=True):
                data = bytes.fromhex(tx["input"][2:])
                name = gw.call_name(data, names)
                gas = int(receipt["gasUsed"], 16)
                gas_by_function[name] = gas_by_function.get(name, 0) + gas
                count_by_function[name] = count_by_function.get(name, 0) + 1
                gas_by_day[day] += gas
                totals["gas"] += gas
                totals["fee_wei"] += gas * int(receipt["effectiveGasPrice"], 16)
                totals["calldata_bytes"] += len(data)
                totals["event_bytes"] += sum(
                    32 * len(log["topics"]) + (len(log["data"]) - 2) // 2 for log in receipt["logs"]
                )
                totals["txs"] += 1
    return {**totals, "gas_by_function": gas_by_function, "txs_by_function": count_by_function,
            "gas_by_day": gas_by_day}  # fmt: skip


def _contract_storage(url: str, address: str) -> int:
    """Bytes of the contract's non-zero storage slots, from anvil's own state dump."""
    (dump,) = _rpc(url, [("anvil_dumpState", [])])
    state = json.loads(gzip.decompress(bytes.fromhex(dump[2:])))
    accounts = {k.lower(): v for k, v in state["accounts"].items()}
    storage = accounts[address.lower()].get("storage", {})
    return 32 * sum(1 for value in storage.values() if int(value, 16) != 0)


def _repo_stats(nodes: list[str]) -> list[tuple[int, int]]:
    """(bytes, objects) of each node's repository, as the node reports them."""
    stats = []
    for url in nodes:
        stat = httpx.post(f"{url}/api/v0/repo/stat", timeout=60).json()
        stats.append((int(stat["RepoSize"]), int(stat["NumObjects"])))
    return stats


def _ipfs_accounting(
    nodes: list[str], objects: list[str], empty: list[tuple[int, int]]
) -> dict[str, Any]:
    """How much each node's repository grew, and on how many nodes each stored object (every
    record's manifest and envelope) is pinned."""
    repos = [
        {"url": url, "bytes": size - size0, "objects": count - count0}
        for url, (size, count), (size0, count0) in zip(
            nodes, _repo_stats(nodes), empty, strict=True
        )
    ]
    clients = [KuboNode(url, timeout=60) for url in nodes]
    replicas = [sum(node.is_pinned(cid) for node in clients) for cid in objects]
    return {
        "nodes": repos,
        "bytes": sum(r["bytes"] for r in repos),
        "replicas_min": min(replicas, default=0),
        "replicas_mean": sum(replicas) / len(replicas) if replicas else 0.0,
    }


def _summary(
    scale: Scale,
    images: list[Image],
    done: list[Done],
    chain: dict[str, Any],
    ipfs: dict[str, Any],
    day_walls: list[float],
    steps: dict[str, float],
) -> dict[str, Any]:
    transfers = [d for d in done if d.event.kind in TRANSFERS]
    attacks = [d for d in done if d.event.kind in ATTACKS]
    sends = [d for d in done if d.event.kind == "send"]
    per_day = [0] * scale.days
    for d in transfers:
        per_day[d.event.day] += d.ok
    ok_transfers = [d for d in transfers if d.ok]
    return {
        "scale": scale.__dict__,
        "images": len(images),
        "images_sent": sum(d.ok for d in sends),
        "transfers": len(transfers),
        "transfers_ok": len(ok_transfers),
        "success_rate": len(ok_transfers) / len(transfers) if transfers else 0.0,
        "transfers_by_kind": _tally(transfers),
        "transfers_per_day": per_day,
        "attacks_planned": len(attacks),
        "attacks_blocked": sum(d.ok for d in attacks),
        "attacks_by_kind": _tally(attacks),
        "other_events": _tally([d for d in done if d.event.kind in ("grant", "revoke")]),
        "failures": _failures(done),
        "upload_s_mean": _mean([d.seconds for d in sends if d.ok]),
        "transfer_s_mean": _mean([d.seconds for d in ok_transfers]),
        "bytes_sent": sum(d.bytes for d in sends),
        "chain": chain,
        "ipfs": ipfs,
        "day_walls_s": day_walls,
        "steps_s": steps,
        "paper": PAPER,
        "setup": (
            f"3 gateways (scanseal serve, TLS), one anvil node, {scale.nodes} js-ipfs nodes, "
            f"{scale.clinicians} clinicians, {scale.images} images over {scale.days} days"
        ),
    }


def _failures(done: list[Done]) -> list[str]:
    """The first twenty events of the clinicians' own work that failed, with the error."""
    failed = [d for d in done if not d.ok and d.event.kind not in ATTACKS]
    return [f"{d.event.kind} day {d.event.day}: {d.error}" for d in failed][:20]


def _tally(items: list[Done]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for d in items:
        row = out.setdefault(d.event.kind, {"planned": 0, "ok": 0})
        row["planned"] += 1
        row["ok"] += d.ok
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


# --- rendering ------------------------------------------------------------------------------------


def render(result: dict[str, Any], figures: Path) -> str:
    """Figures beside the paper's Section 5.5, a reading, and the two plots."""
    paper, chain, ipfs = result["paper"], result["chain"], result["ipfs"]
    scale = result["scale"]
    rows = [
        ("departments / gateways", f"{paper['departments']}", "3"),
        ("Ethereum nodes", f"{paper['ethereum_nodes']}", "1 anvil node shared by 3 gateways"),
        ("IPFS nodes", f"{paper['ipfs_nodes']}", f"{scale['nodes']} js-ipfs"),
        ("clinicians", f"{paper['clinicians']}", f"{scale['clinicians']}"),
        ("images sent", f"{paper['images']:,} over {paper['days']} days",
         f"{result['images_sent']:,} of {result['images']:,} over {scale['days']} days"),
        ("transfers", f"{paper['transfers']:,}", f"{result['transfers']:,}"),
        ("successful", f"{paper['successful']:,} ({paper['success_rate']:.1%})",
         f"{result['transfers_ok']:,} ({result['success_rate']:.1%})"),
        ("unauthorized attempts blocked", f"{paper['blocked']} of {paper['blocked']}",
         f"{result['attacks_blocked']} of {result['attacks_planned']}"),
        ("average transfer time", f"{paper['avg_transfer_s']} s",
         f"{result['transfer_s_mean']:.2f} s (fetch + open); upload "
         f"{result['upload_s_mean']:.2f} s"),
        ("IPFS storage", f"{paper['ipfs_bytes'] / 1e9:.1f} GB",
         f"{ipfs['bytes'] / 1e6:,.0f} MB on {scale['nodes']} nodes; every manifest and "
         f"envelope pinned on at least {ipfs['replicas_min']} of {scale['nodes']} nodes "
         f"(mean {ipfs['replicas_mean']:.2f})"),
        ("on-chain storage", f"{paper['chain_bytes'] / 1e6:.1f} MB",
         f"{chain['contract_storage_bytes'] / 1e6:.2f} MB contract storage; calldata "
         f"{chain['calldata_bytes'] / 1e6:.2f} MB; events {chain['event_bytes'] / 1e6:.2f} MB"),
        ("gas", f"${paper['cost_usd']:.2f} in fees",
         f"{chain['gas']:,} gas in {chain['txs']:,} transactions "
         f"({chain['fee_wei'] / 1e18:.4f} ETH at anvil's base fee)"),
    ]  # fmt: skip
    table = ["| | paper | ScanSeal |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    attacks = ", ".join(
        f"{k} {v['ok']}/{v['planned']}" for k, v in result["attacks_by_kind"].items()
    )
    kinds = ", ".join(
        f"{k} {v['ok']}/{v['planned']}" for k, v in result["transfers_by_kind"].items()
    )
    gas = ", ".join(
        f"{name} {gas / max(result['chain']['txs_by_function'][name], 1):,.0f}"
        for name, gas in sorted(chain["gas_by_function"].items(), key=lambda kv: -kv[1])
    )
    plot = _plot(result, figures)
    text = [
        f"Setup: {result['setup']}; per-record ledger (each record, grant, revocation and "
        "access attempt is a transaction). A month is compressed into "
        f"{sum(result['day_walls_s']):.0f} s of running (setup before it: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result["steps_s"].items() if k != "month")
        + "). Transfers count only when the recipient's client opened the image with "
        "every check; attacks count as blocked only when refused with 403 (no or revoked "
        "grant) or 409 (replay).",
        "",
        "\n".join(table),
        "",
        f"Transfers by kind: {kinds}. Attacks by kind: {attacks}. Mean gas per transaction by "
        f"function: {gas}.",
        "",
        _reading(result),
        "",
        f"![Transfers per day and cumulative gas]({figures.parent.name}/{figures.name}/"
        f"{plot.name})",
    ]
    return "\n".join(text)


def _reading(result: dict[str, Any]) -> str:
    parts = [
        f"{result['transfers_ok']:,} of {result['transfers']:,} transfers succeeded "
        f"({result['success_rate']:.1%}; the paper: 99.7 %)",
        "every planned attack was blocked"
        if result["attacks_blocked"] == result["attacks_planned"]
        else f"{result['attacks_planned'] - result['attacks_blocked']} planned attacks were "
        "not blocked",
    ]
    if result["failures"]:
        parts.append(f"first failure: {result['failures'][0]}")
    per_image = result["chain"]["gas"] / max(result["images_sent"], 1)
    parts.append(f"{per_image:,.0f} gas per image sent, all events included")
    return "Reading: " + "; ".join(parts) + "."


def _plot(result: dict[str, Any], figures: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    days = list(range(1, len(result["transfers_per_day"]) + 1))
    cumulative, total = [], 0
    for gas in result["chain"]["gas_by_day"]:
        total += gas
        cumulative.append(total / 1e6)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    left.bar(days, result["transfers_per_day"])
    left.set_xlabel("simulated day")
    left.set_ylabel("successful transfers")
    right.plot(days, cumulative, "o-", markersize=3)
    right.set_xlabel("simulated day")
    right.set_ylabel("cumulative gas (millions)")
    fig.suptitle("Section 5.5: three departments over a simulated month", fontsize=10)
    fig.tight_layout()
    path = figures / "simulation.png"
    fig.savefig(path)
    plt.close(fig)
    return path
