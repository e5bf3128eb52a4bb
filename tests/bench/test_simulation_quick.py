"""Section 5.5's simulation: the seeded schedule, and the quick run on real engines.

The quick run's figures come from the session's quick evaluation (tests/bench/conftest.py), as
the driver stored them as JSON and rendered them into RESULTS.md, so the month is simulated
once per session.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from evaluation_support import png, section_result, section_text

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

from evaluation import simulation

_NO_IPFS = simulation.ipfs_missing()
if _NO_IPFS is not None and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the simulation on js-ipfs: {_NO_IPFS}")


def test_schedule_is_seeded_and_orders_every_dependency():
    images, events = simulation.schedule(simulation.FULL)
    assert (images, events) == simulation.schedule(simulation.FULL)
    assert len(images) == 1000
    assert sum(e.kind == "send" for e in events) == 1000
    assert {department for department in map(simulation.department, range(50))} == {0, 1, 2}
    first = {(e.image, e.kind): (e.day, e.phase) for e in events}
    for e in events:
        image = images[e.image]
        assert 0 <= e.day < 30
        assert (e.day, e.phase) > (image.day, 1) or e.kind == "send"
        if e.kind == "revoked attempt":
            assert (e.day, e.phase) > first[(e.image, "revoke")]
        if e.kind == "revoke":
            assert e.day > first[(e.image, "grant")][0]
        if e.kind == "replay":
            assert (e.day, e.phase) > first[(e.image, "follow-up")]
        if e.kind == "unauthorized" and e.actor >= 0:
            assert e.actor not in (image.sender, image.recipient)
    kinds = {e.kind for e in events}
    assert set(simulation.ATTACKS) <= kinds
    assert sum(image.recipient % 3 != image.sender % 3 for image in images) > 600


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(_NO_IPFS is not None, reason=str(_NO_IPFS))
def test_quick_run_accounts_for_every_transfer_attack_and_gas(quick: Path) -> None:
    result = section_result(quick, "simulation")
    _images, events = simulation.schedule(simulation.QUICK)
    planned = {kind: sum(e.kind == kind for e in events) for kind in {e.kind for e in events}}

    assert result["images_sent"] == result["images"] == simulation.QUICK.images
    assert result["transfers"] == sum(planned.get(k, 0) for k in simulation.TRANSFERS)
    assert result["transfers_ok"] == result["transfers"], result["failures"]
    assert 0.0 <= result["success_rate"] <= 1.0
    assert result["attacks_planned"] == sum(planned.get(k, 0) for k in simulation.ATTACKS) > 0
    assert result["attacks_blocked"] == result["attacks_planned"]
    assert sum(result["transfers_per_day"]) == result["transfers_ok"]

    chain = result["chain"]
    txs = chain["txs_by_function"]
    assert txs["storeImage"] == result["images"]
    # every read attempt is a logAccess: transfers and attacks; a grant reads only the
    # record's header and is logged as a grant, never as a download
    grants = result["other_events"].get("grant", {"planned": 0})["planned"]
    assert grants > 0
    assert txs["logAccess"] == result["transfers"] + result["attacks_planned"]
    assert txs["grantAccess"] >= grants
    assert chain["gas"] > 0
    assert sum(chain["gas_by_day"]) == chain["gas"]
    assert chain["contract_storage_bytes"] > 0
    assert chain["calldata_bytes"] > 0

    ipfs = result["ipfs"]
    assert ipfs["replicas_min"] == simulation.QUICK.nodes
    assert ipfs["bytes"] >= result["bytes_sent"]

    assert [claim["met"] for claim in result["claims"]] == [None, None, None]
    assert result["claims"][1]["scanseal"] == f"{result['attacks_blocked']} of " + str(
        result["attacks_planned"]
    )

    # the driver rendered the section from the stored result, plots into img/results/
    text = section_text(quick, simulation.TITLE)
    png(quick, "simulation.png")
    assert "(img/results/simulation.png)" in text
    assert f"| transfers | 1,247 | {result['transfers']:,} |" in text
