"""Section 5.5: a hospital network of three departments over a month, simulated on one machine.

Three department gateways (radiology, cardiology, oncology: three ``scanseal serve`` processes,
each with its own home, keys, state and TLS certificate) share one anvil chain, on which this
module deploys the ImageRegistry and makes each gateway an admin, and store through the
replicated store into several js-ipfs nodes, one per department: each gateway pins every
object on its own department's node and the next department's (two replicas of everything;
with fewer than three nodes, every node). The ledger runs in per-record mode, the paper's
design: every record, grant, revocation and access attempt is a transaction, so the gas
figures are the paper's kind of cost.

The clinicians are members of their department's gateway. A seeded schedule compresses a month
into minutes: a daily volume with quieter weekends; for each image a sender and a recipient
(mostly in another department); consultations (the owner grants a colleague, who fetches),
some of them revoked days later; follow-up fetches; and the planned attacks — fetches by
clinicians or strangers without a grant, a revoked consultant trying again, and captured
requests replayed. Each simulated day runs in phases (send; fetch and grant; consult,
follow-up and revoke; attacks), the events of a phase concurrently on client processes (the
clinicians' machines: one process per group of clinicians, so sealing and opening run in
parallel rather than behind one interpreter lock), each event on its own connection to the
image's gateway. A sender seals before its upload is timed, as on its own machine. A transfer
(an image reaching an authorized clinician: first fetch, consultation, follow-up) counts only
when the client opened it with every check of docs/PROTOCOL.md §4.3; an attack counts as
blocked only when the gateway refused it with the expected error (403 or 409).

Gas, calldata and event bytes come from the chain's receipts and transactions; contract
storage from the node's own state dump before and after; IPFS bytes from each node's
``repo/stat`` and replicas from each node's pins.

On js-ipfs, ``KuboNode.is_pinned`` (``pin/ls`` of one CID, no type) walks every pinned DAG, so
each replicated put costs time in proportion to what the node already pins: about 1.4 s per
call at 300 pins here. The full month (about 1,400 pins per node) is only practical once that
call asks for ``type=recursive``; the quick run is small enough not to notice.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from eth_account import Account

from devnode import ANVIL_FUNDER_KEY, running_anvil
from scanseal.client import GatewayClient, open_bundle
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import AccessDenied
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.storage import CID
from scanseal.transfer.upload import seal_for_upload

from . import _gateway as gw
from ._gateway import GatewayProcess

T = TypeVar("T")

TITLE = "Section 5.5: three departments, one month, simulated"
BUDGET_S = 360

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
CLIENTS = 8  # client processes: the clinicians' machines
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
    """The month, seeded: images with their senders and recipients, and every event.

    Consultations, revocations, follow-ups and attacks are drawn by count (their share of the
    images, at least one each), so a small run goes through every path too.
    """
    rng = random.Random(scale.seed)
    weights = [WEEKEND if day % 7 in (5, 6) else 1.0 for day in range(scale.days)]
    days = sorted(rng.choices(range(scale.days), weights=weights, k=scale.images))
    images: list[Image] = []
    events: list[Event] = []
    for index, day in enumerate(days):
        sender = rng.randrange(scale.clinicians)
        cross = rng.random() < CROSS_DEPARTMENT
        recipient = _pick(rng, scale.clinicians, {sender}, cross, department(sender))
        name, size = _kind(rng)
        images.append(Image(index, day, sender, recipient, name, size, gateway=department(sender)))
        events += [Event("send", day, 1, index, sender, recipient),
                   Event("fetch", day, 2, index, recipient)]  # fmt: skip
    involvement = [{image.sender, image.recipient} for image in images]
    consulted = []
    for image in _some(rng, images, CONSULT):
        consultant = _pick(rng, scale.clinicians, involvement[image.index], True,
                           department(image.sender))  # fmt: skip
        involvement[image.index].add(consultant)
        consulted.append((image, consultant))
        events += [Event("grant", image.day, 2, image.index, image.sender, consultant),
                   Event("consult", image.day, 3, image.index, consultant)]  # fmt: skip
    revocable = [(image, c) for image, c in consulted if image.day + 1 < scale.days]
    for image, consultant in _some(rng, revocable, REVOKE):
        later = rng.randint(image.day + 1, min(image.day + 5, scale.days - 1))
        events += [Event("revoke", later, 3, image.index, image.sender, consultant),
                   Event("revoked attempt", later, 4, image.index, consultant)]  # fmt: skip
    for image in _some(rng, images, FOLLOW_UP):
        later = rng.randint(image.day, min(image.day + 7, scale.days - 1))
        events.append(Event("follow-up", later, 3, image.index, image.recipient))
    events += _attacks(rng, scale, images, events, involvement)
    events.sort(key=lambda e: (e.day, e.phase, e.image))
    return images, events


def _some(rng: random.Random, items: Sequence[T], share: float) -> list[T]:
    """``share`` of ``items`` (at least one when there are any), drawn without replacement."""
    count = min(len(items), max(1, round(share * len(items))))
    return sorted(rng.sample(list(items), count), key=items.index) if items else []


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
    for n, image in enumerate(_some(rng, images, INTRUDE)):
        outsiders = [c for c in range(scale.clinicians) if c not in involvement[image.index]]
        # about a third are strangers, not registered at all
        stranger = n % 3 == 2 or not outsiders
        intruder = -1 - n if stranger else rng.choice(outsiders)
        attacks.append(Event("unauthorized", image.day, 4, image.index, intruder))
    follow_ups = [e for e in events if e.kind == "follow-up"]
    for e in _some(rng, follow_ups, REPLAY):
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


@dataclass(frozen=True)
class Task:
    """One event as a client process receives it: names, addresses, nothing unpicklable."""

    kind: str
    actor: str  # a clinician's keystore name, or "strangerN"
    other: str  # the recipient or grantee's keystore name, or ""
    image: int
    modality: str
    size: int
    record: str
    gateway: str
    ca: str
    captured: tuple[tuple[str, str], ...] = ()


@dataclass
class World:
    """What the conductor knows between phases: each image's record and gateway, and the
    requests an eavesdropper captured."""

    gateways: list[GatewayProcess]
    images: list[Image]
    captured: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def task(self, event: Event) -> Task:
        image = self.images[event.image]
        gateway = self.gateways[image.gateway]
        return Task(
            kind=event.kind,
            actor=_name(event.actor),
            other="" if event.other < 0 else _name(event.other),
            image=image.index,
            modality=image.kind,
            size=image.size,
            record=image.record,
            gateway=gateway.url,
            ca=str(gateway.ca),
            captured=self.captured.get(event.image, ()),
        )

    def learn(self, event: Event, answer: dict[str, Any]) -> Done:
        """Keep what later phases need (the record's CIDs, a captured request)."""
        image = self.images[event.image]
        if answer.get("record"):
            image.record, image.envelope = answer["record"], answer["envelope"]
        if answer.get("captured"):
            self.captured[event.image] = tuple(answer["captured"])
        return Done(event, answer["ok"], answer["seconds"], answer["error"], answer["bytes"])


def _name(actor: int) -> str:
    return f"dr{actor:02d}" if actor >= 0 else f"stranger{-1 - actor}"


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
        keys = Keystore(work / "keys", scrypt_n=gw.SCRYPT_N)
        people = [keys.create(_name(c), gw.PASSPHRASE) for c in range(scale.clinicians)]
        clock.lap("contract and identities")
        gateways = _gateways(work, url, ledger, nodes, people)
        stack.callback(_stop_all, gateways)
        _start_all(gateways)
        clock.lap("gateways")
        state_before = _contract_storage(url, ledger.address)
        first_block = int(ledger.chain.w3.eth.block_number)
        world = World(gateways, images)
        clients = [
            stack.enter_context(
                ProcessPoolExecutor(1, initializer=_client_init, initargs=(str(work),))
            )
            for _ in range(max(1, min(CLIENTS, scale.clinicians // 2)))
        ]
        done, day_blocks, day_walls = _play(world, clients, events, scale.days, ledger)
        served = _gateway_seconds(gateways)
        for gateway in gateways:
            gateway.stop()  # per-record mode: nothing pending, but close cleanly before reading
        chain = _chain_accounting(url, first_block, day_blocks)
        chain["contract_storage_bytes"] = _contract_storage(url, ledger.address) - state_before
        clock.lap("month")
        objects = [cid for i in images for cid in (i.record, i.envelope) if cid]
        ipfs = _ipfs_accounting(nodes, objects, empty)
        clock.lap("accounting")
    result = _summary(scale, images, done, chain, ipfs, day_walls, clock.laps)
    result["gateway_seconds_mean"] = served
    result["claims"] = _claims(result, full=scale == FULL)
    return result


def _claims(result: dict[str, Any], *, full: bool) -> list[dict[str, Any]]:
    """The summary rows; a quick run gives figures but no reading."""
    storage = result["chain"]["contract_storage_bytes"] / 1e6
    return [
        {
            "what": "simulated month: transfers succeeded",
            "paper": "99.7 % (1,243 of 1,247)",
            "scanseal": f"{result['success_rate']:.1%} ({result['transfers_ok']:,} of "
            f"{result['transfers']:,})",
            "met": result["success_rate"] >= 0.997 if full else None,
        },
        {
            "what": "simulated month: unauthorized and replayed attempts blocked",
            "paper": "23 of 23",
            "scanseal": f"{result['attacks_blocked']} of {result['attacks_planned']}",
            "met": result["attacks_blocked"] == result["attacks_planned"] if full else None,
        },
        {
            "what": "simulated month: on-chain storage",
            "paper": "2.4 MB",
            "scanseal": f"{storage:.2f} MB of contract storage",
            "met": storage <= 2.4 if full else None,
        },
    ]


class _Clock:
    """Seconds spent in each step of the run, for the report."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _jsipfs() -> Any:
    """The test suite's js-ipfs launcher (tests/storage/jsipfs.py), loaded by its path: the
    name ``storage`` also belongs to bench/storage.py."""
    name = "scanseal_eval_jsipfs"
    if name in sys.modules:
        return sys.modules[name]
    path = gw.ROOT / "tests" / "storage" / "jsipfs.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def ipfs_missing() -> str | None:
    """Why js-ipfs cannot run here, or None."""
    reason: str | None = _jsipfs().missing_reason()
    return reason


@contextmanager
def _ipfs_nodes(base: Path, count: int) -> Iterator[list[str]]:
    """``count`` js-ipfs daemons started side by side; stopped by PID on the way out."""
    jsipfs = _jsipfs()
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
    chain = f'backend = "jsonrpc"\nurl = "{url}"\ncontract = "{ledger.address}"\n'
    gateways = []
    for d, name in enumerate(DEPARTMENTS):
        members = [p.card for c, p in enumerate(people) if department(c) == d]
        mine = replica_nodes(nodes, d)
        storage = (
            f'[storage]\nbackend = "kubo"\nnodes = {json.dumps(mine)}\n'
            f"min_replicas = {len(mine)}\ntimeout = 60\n"
        )
        gateway = GatewayProcess(name, work / name, chain + 'mode = "per-record"\n', storage,
                                 members)  # fmt: skip
        account = gateway.write().address
        ledger.set_admin(owner, account)
        sent = ledger.chain.send(owner, {"to": account, "value": FUNDING, "gas": 21000})
        ledger.chain.wait(sent)
        gateways.append(gateway)
    return gateways


def replica_nodes(nodes: list[str], department: int) -> list[str]:
    """Where a department's gateway replicates: its own node and the next department's (a
    ring), or every node when there are fewer than three."""
    if len(nodes) < 3:
        return list(nodes)
    return [nodes[department % len(nodes)], nodes[(department + 1) % len(nodes)]]


def _stop_all(gateways: list[GatewayProcess]) -> None:
    for gateway in gateways:
        gateway.stop()


def _start_all(gateways: list[GatewayProcess]) -> None:
    with ThreadPoolExecutor(max_workers=len(gateways)) as pool:
        for future in [pool.submit(g.start) for g in gateways]:
            future.result()


def _play(
    world: World,
    clients: list[ProcessPoolExecutor],
    events: list[Event],
    days: int,
    ledger: Ledger,
) -> tuple[list[Done], list[int], list[float]]:
    """Every day, phase after phase, each phase's events at once on the client processes (a
    clinician always on the same one, which loads its keys once); returns the outcomes, the
    last block of each day and each day's wall time."""
    done: list[Done] = []
    day_blocks, day_walls = [], []
    for day in range(days):
        started = time.perf_counter()
        for phase in (1, 2, 3, 4):
            batch = [e for e in events if e.day == day and e.phase == phase]
            futures = [
                clients[e.actor % len(clients)].submit(_perform, world.task(e)) for e in batch
            ]
            done += [world.learn(e, f.result()) for e, f in zip(batch, futures, strict=True)]
        day_walls.append(time.perf_counter() - started)
        day_blocks.append(int(ledger.chain.w3.eth.block_number))
        failed = sum(not d.ok for d in done)
        print(
            f"simulation: day {day + 1}/{days} in {day_walls[-1]:.1f} s, "
            f"{len(done)} events so far, {failed} not as expected",
            file=sys.stderr,
        )
    return done, day_blocks, day_walls


# --- the clinicians' machines (client processes) -------------------------------------------------

_CLIENT: dict[str, Any] = {}


def _client_init(work: str) -> None:
    """A client process: the clinicians' keystore (identities loaded on first use)."""
    _CLIENT["keys"] = Keystore(Path(work) / "keys", scrypt_n=gw.SCRYPT_N)
    _CLIENT["scratch"] = Path(tempfile.mkdtemp(dir=work, prefix="client-"))
    _CLIENT["ids"] = {}


def _me(name: str) -> Identity:
    ids: dict[str, Identity] = _CLIENT["ids"]
    if name not in ids:
        keys: Keystore = _CLIENT["keys"]
        stranger = name.startswith("stranger")
        ids[name] = Identity.generate(name) if stranger else keys.load(name, gw.PASSPHRASE)
    return ids[name]


def _perform(task: Task) -> dict[str, Any]:
    """Run one event; an unexpected error is a failed event, never a crashed run."""
    actions: dict[str, Callable[[Task], dict[str, Any]]] = {
        "send": _send, "fetch": _fetch, "consult": _fetch, "follow-up": _follow_up,
        "grant": _grant, "revoke": _revoke, "unauthorized": _attack,
        "revoked attempt": _attack, "replay": _replay,
    }  # fmt: skip
    try:
        return actions[task.kind](task)
    except Exception as error:  # a ScanSealError or a client crash: recorded, not raised
        return _answer(False, 0.0, f"{type(error).__name__}: {error}")


def _answer(
    ok: bool, seconds: float, error: str = "", size: int = 0, **more: Any
) -> dict[str, Any]:
    return {"ok": ok, "seconds": seconds, "error": error, "bytes": size, **more}


def _client(task: Task, name: str | None = None) -> GatewayClient:
    return GatewayClient(task.gateway, _me(name or task.actor), ca=Path(task.ca), timeout=120)


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(dir=_CLIENT["scratch"]))


def _send(task: Task) -> dict[str, Any]:
    """Seal on the sender's machine (not timed), then upload (timed)."""
    scratch = _scratch()
    source = gw.synthetic_slice(scratch / f"{task.image}.dcm", task.size, task.image,
                                task.modality)  # fmt: skip
    recipient = _CLIENT["keys"].card(task.other)
    sealed = seal_for_upload(source, [recipient], _me(task.actor), scratch)
    with _client(task) as client:
        started = time.perf_counter()
        answer = client.upload(sealed)
        seconds = time.perf_counter() - started
    size = sealed.envelope.stat().st_size
    shutil.rmtree(scratch)
    return _answer(True, seconds, size=size, record=str(answer["manifest_cid"]),
                   envelope=str(answer["envelope_cid"]))  # fmt: skip


def _fetch(task: Task) -> dict[str, Any]:
    """Fetch and open, every check included: a transfer."""
    output = _scratch() / "image.dcm"
    with _client(task) as client:
        started = time.perf_counter()
        bundle = client.fetch_bundle(task.record)
        open_bundle(bundle, task.record, _me(task.actor), output)
        seconds = time.perf_counter() - started
    shutil.rmtree(output.parent)
    return _answer(True, seconds, size=len(bundle))


def _follow_up(task: Task) -> dict[str, Any]:
    """A later fetch and open whose signed request an eavesdropper captures (for a replay)."""
    with _client(task) as client:
        headers = client.signed("fetch", task.record)
    output = _scratch() / "image.dcm"
    started = time.perf_counter()
    answer = _raw_fetch(task, headers)
    if answer.status_code != 200:
        return _answer(False, time.perf_counter() - started, f"HTTP {answer.status_code}")
    open_bundle(answer.content, task.record, _me(task.actor), output)
    seconds = time.perf_counter() - started
    shutil.rmtree(output.parent)
    return _answer(True, seconds, size=len(answer.content), captured=list(headers.items()))


def _raw_fetch(task: Task, headers: dict[str, str]) -> httpx.Response:
    verify = ssl.create_default_context(cafile=task.ca)
    with httpx.Client(verify=verify, timeout=120) as http:
        return http.get(f"{task.gateway}/v1/records/{task.record}", headers=headers)


def _grant(task: Task) -> dict[str, Any]:
    with _client(task) as client:
        started = time.perf_counter()
        client.grant(task.record, _CLIENT["keys"].card(task.other))
    return _answer(True, time.perf_counter() - started)


def _revoke(task: Task) -> dict[str, Any]:
    with _client(task) as client:
        started = time.perf_counter()
        client.revoke(task.record, _CLIENT["keys"].card(task.other).address)
    return _answer(True, time.perf_counter() - started)


def _attack(task: Task) -> dict[str, Any]:
    """A fetch by someone without a (current) grant: blocked when the gateway says 403."""
    started = time.perf_counter()
    with _client(task) as client:
        try:
            client.fetch_bundle(task.record)
        except AccessDenied as refused:
            return _answer(True, time.perf_counter() - started, str(refused))
    return _answer(False, time.perf_counter() - started, "the record was released")


def _replay(task: Task) -> dict[str, Any]:
    """The captured request of a follow-up, sent again: blocked when the gateway says 409."""
    if not task.captured:
        return _answer(False, 0.0, "nothing was captured (the follow-up failed)")
    started = time.perf_counter()
    answer = _raw_fetch(task, dict(task.captured))
    blocked = answer.status_code == 409 and "ReplayDetected" in answer.text
    return _answer(blocked, time.perf_counter() - started, f"HTTP {answer.status_code}")


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


def _gateway_seconds(gateways: list[GatewayProcess]) -> dict[str, float]:
    """Mean time the gateways took to answer, by action, from their own Prometheus metrics."""
    sums: dict[str, list[float]] = {}
    for gateway in gateways:
        for line in gateway.metrics().splitlines():
            for suffix in ("_sum", "_count"):
                head = f"scanseal_request_seconds{suffix}{{"
                if line.startswith(head):
                    action = line.split('action="', 1)[1].split('"', 1)[0]
                    pair = sums.setdefault(action, [0.0, 0.0])
                    pair[suffix == "_count"] += float(line.rsplit(" ", 1)[1])
    return {action: total / count for action, (total, count) in sums.items() if count}


def _repo_stats(nodes: list[str]) -> list[tuple[int, int]]:
    """(bytes, objects) of each node's repository, as the node reports them."""
    stats = []
    for url in nodes:
        stat = httpx.post(f"{url}/api/v0/repo/stat", timeout=60).json()
        stats.append((int(stat["RepoSize"]), int(stat["NumObjects"])))
    return stats


def _recursive_pins(url: str) -> set[bytes]:
    """Every CID a node pins recursively (binary), in one call: asking per CID without a type
    makes js-ipfs walk every pinned DAG to rule out indirect pins, which grows with the repo.
    The node answers in its default bases (its own init objects are CIDv0)."""
    reply = httpx.post(f"{url}/api/v0/pin/ls", params={"type": "recursive"}, timeout=120)
    reply.raise_for_status()
    return {CID.parse(key).to_bytes() for key in reply.json().get("Keys", {})}


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
    pinned = [_recursive_pins(url) for url in nodes]
    wanted = [CID.parse(cid).to_bytes() for cid in objects]
    replicas = [sum(cid in pins for pins in pinned) for cid in wanted]
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
        "seconds_by_kind": {
            kind: _mean([d.seconds for d in done if d.event.kind == kind and d.ok])
            for kind in sorted({d.event.kind for d in done})
        },
        "upload_s_mean": _mean([d.seconds for d in sends if d.ok]),
        "transfer_s_mean": _mean([d.seconds for d in ok_transfers]),
        "bytes_sent": sum(d.bytes for d in sends),
        "chain": chain,
        "ipfs": ipfs,
        "day_walls_s": day_walls,
        "steps_s": steps,
        "paper": PAPER,
        "setup": (
            f"3 gateways (scanseal serve, TLS), one anvil node, {scale.nodes} js-ipfs nodes "
            f"({'two per gateway, a ring' if scale.nodes >= 3 else 'all on every gateway'}), "
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
         f"{chain['gas']:,} gas in {chain['txs']:,} transactions: {chain['gas'] / 1e9:.2f} ETH "
         f"at 1 gwei per gas (anvil's own base fee charged {chain['fee_wei'] / 1e9:,.0f} "
         "gwei in all)"),
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
        f"function: {gas}. Mean time the gateways took per request (their own metrics): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(result["gateway_seconds_mean"].items()))
        + ".",
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
    from matplotlib.ticker import MaxNLocator

    days = list(range(1, len(result["transfers_per_day"]) + 1))
    cumulative, total = [], 0
    for gas in result["chain"]["gas_by_day"]:
        total += gas
        cumulative.append(total / 1e6)
    fig, left, right = gw.panels("Section 5.5: three departments over a simulated month")
    left.bar(days, result["transfers_per_day"])
    left.set_xlabel("simulated day")
    left.set_ylabel("successful transfers")
    right.plot(days, cumulative, "o-", markersize=3)
    right.set_xlabel("simulated day")
    right.set_ylabel("cumulative gas (millions)")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return gw.save(fig, figures, "simulation.png")
