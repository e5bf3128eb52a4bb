"""One world for the console tests: a batched gateway, a CT sent by ito to lee, granted to
novak, fetched by lee and novak, a stranger's attempt denied; an MR the tamper screen flags
sent by novak to lee; and a console running as lee
(one per test module: its launch token is single-use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console_harness import CT, ConsoleProcess
from gateway_harness import GatewayProcess, World, make_world, served
from scanseal.client import GatewayClient
from scanseal.errors import AccessDenied
from tests_detect_support import flagged_dicom


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("console")
    return make_world(root, ["ito", "lee", "novak"], ["mallory"], mode="batched")


@pytest.fixture(scope="package")
def gateway(world: World) -> Iterator[GatewayProcess]:
    yield from served(world)


@pytest.fixture(scope="package")
def record(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A record sent, granted, fetched and refused once, its batch anchored."""
    people, scratch = gateway.world.people, tmp_path_factory.mktemp("out")
    with GatewayClient(gateway.url, people["ito"]) as ito:
        cid = str(ito.send(CT, [people["lee"].card], scratch)["manifest_cid"])
        ito.grant(cid, people["novak"].card)
    for name in ("lee", "novak"):
        with GatewayClient(gateway.url, people[name]) as reader:
            reader.fetch(cid, scratch / f"{name}.dcm")
    with GatewayClient(gateway.url, people["mallory"]) as mallory, pytest.raises(AccessDenied):
        mallory.fetch(cid, scratch / "mallory.dcm")
    return cid


@pytest.fixture(scope="package")
def flagged(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A record whose signed verdict is "flagged" (the real detector, no forced threshold)."""
    people, scratch = gateway.world.people, tmp_path_factory.mktemp("flagged")
    source = flagged_dicom(scratch / "edited-mr.dcm", modality="MR")
    with GatewayClient(gateway.url, people["novak"]) as novak:
        return str(novak.send(source, [people["lee"].card], scratch)["manifest_cid"])


@pytest.fixture(scope="module")
def console(
    world: World, gateway: GatewayProcess, record: str, flagged: str
) -> Iterator[ConsoleProcess]:
    process = ConsoleProcess(world, gateway, "lee").start()
    yield process
    process.stop()
