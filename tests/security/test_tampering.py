"""1,000 tampering trials through a man in the middle: 1,000 detected, 0 accepted.

The proxy (tests/mitm_proxy.py) flips bits, inserts or deletes bytes in fetch responses (the
envelope, the manifest, the framing, the grant and the ledger hashes) and in upload requests
(the envelope and the manifest), and fixes Content-Length so the message stays well formed.
A trial is *detected* when the client or the gateway refuses it with a ScanSeal error and no
plaintext is written; *accepted* when a tampered fetch opens or a tampered upload registers.
Clean control runs through the same proxy must succeed, so detections are not proxy faults.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from gateway_harness import RESULTS, GatewayProcess, World, make_world
from mitm_proxy import MitmProxy, Plan
from scanseal.client import GatewayClient
from scanseal.errors import ScanSealError
from scanseal.protocol.wire import MAGIC
from scanseal.transfer.upload import seal_for_upload

CT = Path(str(get_testdata_file("CT_small.dcm")))
HEAD = len(MAGIC) + 4
OPS = ("flip", "insert", "delete")


def _bundle(body: bytes) -> bool:
    return body.startswith(MAGIC) and len(body) > HEAD


def _meta_end(body: bytes) -> int:
    return HEAD + struct.unpack_from(">I", body, len(MAGIC))[0]


def _manifest(body: bytes) -> tuple[int, int]:
    if not _bundle(body):
        return 0, 0  # not a bundle (a health check, a JSON answer): let it through
    start = body.index(b'"manifest":"', 0, _meta_end(body)) + len(b'"manifest":"')
    end = body.index(b'"', start)
    while body[end - 1 : end] == b"\\":  # skip escaped quotes inside the manifest text
        end = body.index(b'"', end + 1)
    return start, end


def _envelope(body: bytes) -> tuple[int, int]:
    if not _bundle(body):
        return 0, 0
    return _meta_end(body), len(body)


def _other(rng: random.Random):
    """Framing (magic and length), the grant member, or the ledger hashes."""

    def region(body: bytes) -> tuple[int, int]:
        if not _bundle(body):
            return 0, 0
        manifest_start, manifest_end = _manifest(body)
        choices = [(0, HEAD), (HEAD, manifest_start), (manifest_end, _meta_end(body))]
        return rng.choice(choices)

    return region


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("mitm"), ["ito", "lee", "novak"], mode="batched")


@pytest.fixture(scope="module")
def setup(world: World, tmp_path_factory: pytest.TempPathFactory):
    gateway = GatewayProcess(world).start()
    proxy = MitmProxy(gateway.port).start()
    people = world.people
    out = tmp_path_factory.mktemp("sent")
    with GatewayClient(gateway.url, people["ito"]) as ito:
        record = str(ito.send(CT, [people["lee"].card], out)["manifest_cid"])
        ito.grant(record, people["novak"].card)  # novak's fetches carry a grant object
    yield gateway, proxy, record
    proxy.stop()
    gateway.stop()


def test_1000_tampering_trials_detected(setup, world: World, tmp_path: Path) -> None:
    _gateway, proxy, record = setup
    rng = random.Random(20261124)
    people = world.people
    trials = (
        [("response", "envelope", _envelope)] * 350
        + [("response", "manifest", _manifest)] * 250
        + [("response", "framing/grant/ledger", _other(rng))] * 150
        + [("request", "upload envelope", _envelope)] * 125
        + [("request", "upload manifest", _manifest)] * 125
    )
    detected = accepted = 0
    outcomes: dict[str, int] = {}
    with (
        GatewayClient(proxy.url, people["lee"]) as lee,
        GatewayClient(proxy.url, people["novak"]) as novak,
        GatewayClient(proxy.url, people["ito"]) as ito,
    ):
        assert ito.domain.gateway == people["gateway"].address  # read before any tampering
        sealed = seal_for_upload(CT, [people["lee"].card], people["ito"], tmp_path)
        _control(proxy, lee, record, tmp_path)
        for index, (direction, what, region) in enumerate(trials):
            proxy.plan = Plan(direction, region, rng.choice(OPS), rng)
            output = tmp_path / f"out-{index}.dcm"
            try:
                if direction == "response":
                    (novak if index % 2 else lee).fetch(record, output)
                else:
                    ito.upload(sealed)
                accepted += 1
            except ScanSealError as error:
                detected += 1
                outcomes[type(error).__name__] = outcomes.get(type(error).__name__, 0) + 1
            assert proxy.plan.applied, what
            assert not output.exists()
        proxy.plan = None
        ito.upload(sealed)  # the untampered upload still goes through the same proxy
        _control(proxy, novak, record, tmp_path)
    RESULTS["in-transit tampering through a MITM proxy"] = (
        len(trials),
        detected,
        accepted,
        "accepted",
    )
    assert len(trials) == 1000
    assert detected == 1000, outcomes
    assert accepted == 0


def _control(proxy: MitmProxy, client: GatewayClient, record: str, tmp_path: Path) -> None:
    proxy.plan = None
    opened = client.fetch(record, tmp_path / f"control-{client.identity.name}.dcm")
    assert opened.path.read_bytes() == CT.read_bytes()
