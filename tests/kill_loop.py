"""SIGKILL a real ``scanseal serve`` at seeded random moments under mixed traffic, then check.

One round: an uploader (Ito: uploads for Lee, grants to Novak) and a reader (Lee and Novak:
signed fetches) run against the gateway child process; once a fetch has been answered, after a
further seeded random delay, the process is killed with SIGKILL, the clients stop, and the
gateway is started again on the same home (its health answers 200 only once it has warmed up).
Then the invariants are checked:

- every acknowledged upload is fetchable by its recipient and opens to the original bytes
  (which checks the manifest, the envelope and the ledger hashes);
- every acknowledged grant lets its grantee open the record;
- no record is registered on the ledger twice (its audit trail has one "stored" entry);
- a repeat of an acknowledged upload answers the receipt first acknowledged;
- every upload or grant that was not acknowledged succeeds when retried;
- a signed fetch that was answered before the kill is refused as a replay after it.

``tests/service/test_kill_loop.py`` runs a few kills; ``bench/kill_loop.py --kills 200`` the
long run.
"""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydicom.data import get_testdata_file

from gateway_harness import GatewayProcess, World, make_world
from scanseal.client import GatewayClient, open_bundle
from scanseal.errors import GatewayUnavailable, ScanSealError
from scanseal.transfer.local import SealedFile
from scanseal.transfer.upload import seal_for_upload

CT = Path(str(get_testdata_file("CT_small.dcm")))


@dataclass
class Tally:
    """What a run did and what went wrong (``problems`` must stay empty)."""

    kills: int = 0
    uploads: int = 0
    retried_uploads: int = 0
    grants: int = 0
    retried_grants: int = 0
    fetches: int = 0
    replays_refused: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Shared:
    """State both client threads and the checker share (under ``lock``)."""

    scratch: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # record -> answer
    sealed: dict[str, SealedFile] = field(default_factory=dict)  # record -> its sealed file
    unacknowledged: list[SealedFile] = field(default_factory=list)
    granted: set[str] = field(default_factory=set)
    ungranted: set[str] = field(default_factory=set)  # grants sent, answer lost
    answered: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # fetch headers
    checked: set[str] = field(default_factory=set)  # records checked after an earlier restart


def run(
    root: Path, *, kills: int, seed: int, mode: str = "per-record", sample: int | None = None
) -> Tally:
    """Kill the gateway ``kills`` times; returns the tally after the final check.

    After each restart the records acknowledged since the previous check are all checked, and
    of the older ones all (``sample`` None) or that many drawn at random (a long run)."""
    world = make_world(root, ["ito", "lee", "novak"], mode=mode)
    rng = random.Random(seed)
    tally, shared = Tally(), _Shared(root / "sealed")
    gateway = GatewayProcess(world).start(timeout=120)
    try:
        for round_no in range(kills):
            stop = threading.Event()
            workers = [
                threading.Thread(target=work, args=(gateway, world, shared, tally, stop, seed))
                for work, seed in ((_uploader, rng.random()), (_reader, rng.random()))
            ]
            for worker in workers:
                worker.start()
            _traffic_flowing(tally)
            time.sleep(rng.uniform(0.05, 1.2))
            _sigkill(gateway)
            tally.kills += 1
            stop.set()
            for worker in workers:
                worker.join(timeout=120)
            gateway.start(timeout=120)
            chosen = _chosen(shared, rng, sample)
            _check(gateway, world, shared, tally, chosen, root / f"check-{round_no}")
    finally:
        gateway.stop()
    return tally


def _traffic_flowing(tally: Tally, timeout: float = 60.0) -> None:
    """Wait for a fetch answered in this round (on a busy machine the first upload can take
    seconds), so each kill lands amid traffic rather than before any."""
    before, deadline = tally.fetches, time.monotonic() + timeout
    while tally.fetches == before and time.monotonic() < deadline:
        time.sleep(0.02)


def _sigkill(gateway: GatewayProcess) -> None:
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait()


def _client(gateway: GatewayProcess, world: World, name: str) -> GatewayClient:
    return GatewayClient(gateway.url, world.people[name], timeout=30)


def _uploader(
    gateway: GatewayProcess, world: World, shared: _Shared, tally: Tally, stop: threading.Event,
    seed: float,
) -> None:  # fmt: skip
    """Ito: new uploads, and grants to Novak on acknowledged records, until the kill."""
    rng = random.Random(seed)
    shared.scratch.mkdir(exist_ok=True)
    try:
        with _client(gateway, world, "ito") as ito:
            while not stop.is_set():
                with shared.lock:
                    choices = sorted(set(shared.acknowledged) - shared.granted - shared.ungranted)
                if choices and rng.random() < 0.3:
                    _grant(ito, world, shared, tally, rng.choice(choices))
                else:
                    sealed = seal_for_upload(
                        CT, [world.people["lee"].card], world.people["ito"],
                        Path(tempfile.mkdtemp(dir=shared.scratch)), screen="off",
                    )  # fmt: skip
                    _upload(ito, shared, tally, sealed)
    except Exception as error:  # reported, the run goes on
        tally.problems.append(f"uploader: {type(error).__name__}: {error}")


def _upload(ito: GatewayClient, shared: _Shared, tally: Tally, sealed: SealedFile) -> bool:
    try:
        answer = ito.upload(sealed)
    except GatewayUnavailable:
        with shared.lock:
            shared.unacknowledged.append(sealed)
        return False
    except ScanSealError as error:
        tally.problems.append(f"upload refused: {type(error).__name__}: {error.reason}")
        return False
    record = str(answer["manifest_cid"])
    with shared.lock:
        first = shared.acknowledged.setdefault(record, answer)
        shared.sealed[record] = sealed
    if first["ledger"] != answer["ledger"]:
        tally.problems.append(f"upload of {record} answered another receipt: {answer['ledger']}")
    tally.uploads += 1
    return True


def _grant(ito: GatewayClient, world: World, shared: _Shared, tally: Tally, record: str) -> None:
    with shared.lock:
        shared.ungranted.add(record)
    try:
        ito.grant(record, world.people["novak"].card)
    except GatewayUnavailable:
        return
    except ScanSealError as error:
        tally.problems.append(f"grant refused: {type(error).__name__}: {error.reason}")
        return
    with shared.lock:
        shared.ungranted.discard(record)
        shared.granted.add(record)
    tally.grants += 1


def _reader(
    gateway: GatewayProcess, world: World, shared: _Shared, tally: Tally, stop: threading.Event,
    seed: float,
) -> None:  # fmt: skip
    """Lee and Novak: signed fetches of acknowledged records; answered ones are kept for replay."""
    rng = random.Random(seed)
    clients = {name: _client(gateway, world, name) for name in ("lee", "novak")}
    try:
        while not stop.is_set():
            with shared.lock:
                lee_may = sorted(shared.acknowledged)
                novak_may = sorted(shared.granted)
            name = "novak" if novak_may and rng.random() < 0.3 else "lee"
            records = novak_may if name == "novak" else lee_may
            if not records:
                time.sleep(0.05)
                continue
            record = rng.choice(records)
            try:
                headers = clients[name].signed("fetch", record)  # may read /v1/health first
                answer = httpx.get(f"{gateway.url}/v1/records/{record}", headers=headers)
            except (httpx.HTTPError, GatewayUnavailable):
                continue
            if answer.status_code != 200:
                tally.problems.append(f"{name} fetch of {record}: HTTP {answer.status_code}")
                continue
            tally.fetches += 1
            with shared.lock:
                shared.answered.append((record, headers))
    except Exception as error:  # reported, the run goes on
        tally.problems.append(f"reader: {type(error).__name__}: {error}")
    finally:
        for each in clients.values():
            each.close()


def _chosen(shared: _Shared, rng: random.Random, sample: int | None) -> set[str]:
    """Which acknowledged records the next check covers: new ones, and old ones or a sample."""
    with shared.lock:
        old = sorted(shared.checked)
        new = set(shared.acknowledged) - shared.checked
    if sample is not None and len(old) > sample:
        old = rng.sample(old, sample)
    return new | set(old)


def _check(
    gateway: GatewayProcess, world: World, shared: _Shared, tally: Tally, chosen: set[str],
    out: Path,
) -> None:  # fmt: skip
    """The invariants after a restart (see the module docstring), on ``chosen`` records and
    on every upload and grant left unacknowledged."""
    out.mkdir()
    with _client(gateway, world, "ito") as ito:
        for sealed in _take(shared.unacknowledged, shared):
            if not _upload(ito, shared, tally, sealed):
                tally.problems.append(f"retry of an unacknowledged upload failed: {sealed}")
            tally.retried_uploads += 1
        with shared.lock:
            pending_grants = sorted(shared.ungranted)
        for record in pending_grants:
            _grant(ito, world, shared, tally, record)
            tally.retried_grants += 1
            if record not in shared.granted:
                tally.problems.append(f"retry of an unacknowledged grant on {record} failed")
        with shared.lock:
            chosen |= set(shared.acknowledged) - shared.checked  # and those just retried
            acknowledged = {r: a for r, a in shared.acknowledged.items() if r in chosen}
            granted = shared.granted & chosen
            answered, shared.answered = shared.answered, []
            shared.checked |= chosen
        for record, first in sorted(acknowledged.items()):
            stored = [e for e in ito.audit(record) if e["action"] == "stored"]
            if len(stored) != 1:
                tally.problems.append(f"{record} is registered {len(stored)} times")
            again = ito.upload(shared.sealed[record])
            if again["ledger"] != first["ledger"]:
                tally.problems.append(f"repeated upload of {record}: {again['ledger']}")
    for name, records in (("lee", sorted(acknowledged)), ("novak", sorted(granted))):
        with _client(gateway, world, name) as reader:
            for record in records:
                _open(reader, world, name, record, out, tally)
    for record, headers in answered:
        status = httpx.get(f"{gateway.url}/v1/records/{record}", headers=headers).status_code
        if status != 409:
            tally.problems.append(f"replayed fetch of {record} answered HTTP {status}")
        else:
            tally.replays_refused += 1
    shutil.rmtree(out)


def _take(items: list[SealedFile], shared: _Shared) -> list[SealedFile]:
    with shared.lock:
        taken = list(items)
        items.clear()
    return taken


def _open(
    reader: GatewayClient, world: World, name: str, record: str, out: Path, tally: Tally
) -> None:
    """Fetch and open ``record`` as ``name`` (checks manifest, envelope and ledger hashes)."""
    output = out / f"{name}-{record}.dcm"
    try:
        opened = open_bundle(reader.fetch_bundle(record), record, world.people[name], output)
    except ScanSealError as error:
        tally.problems.append(f"{record} does not open: {type(error).__name__}: {error.reason}")
        return
    if opened.path.read_bytes() != CT.read_bytes():
        tally.problems.append(f"{record} opened to other bytes")
