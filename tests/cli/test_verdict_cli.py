"""The tamper screen's verdict where people look: ``open``, ``verify``, ``send`` and ``fetch``
print one warning line on stderr for an image flagged at sealing, read from the signed manifest;
stdout stays what scripts parse, and a clean image gets no warning.

The flagged image is the held-out tampered plane the shipped model is most certain about
(``tests_detect_support.flagged_plane``), saved as a 16-bit PNG: the real detector flags it at
sealing, no threshold is forced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from cli_support import Result, card_files
from corpus import make_png
from gateway_harness import GatewayProcess, World, cli_against, make_world
from scanseal.crypto.identity import IdentityCard
from tests_detect_support import flagged_plane, save_png16


def expected_warning(manifest_path: Path, subject: str) -> str:
    """The line a user sees, spelled out from the signed manifest's ``screen`` entry."""
    screen = json.loads(manifest_path.read_text())["screen"]
    assert screen["tampered"] is True
    return (
        f"warning: {subject}: flagged by the tamper screen at sealing (score "
        f"{screen['score']:.3f} >= threshold {screen['threshold']:.3f}, detector "
        f"{screen['model_version']})"
    )


@pytest.fixture
def cards(home):
    return card_files(home, "gateway", "lee")


def _seal(run, cards, source: Path, out: Path) -> Result:
    sealed = run("seal", str(source), "--to", str(cards["lee"]), "-o", str(out), "--as", "gateway")
    assert sealed.code == 0, sealed.err
    return sealed


def test_open_and_verify_warn_once_for_a_flagged_seal(tmp_path, cards, run):
    envelope = tmp_path / "edited.sseal"
    _seal(run, cards, save_png16(flagged_plane(), tmp_path / "edited.png"), envelope)
    warning = expected_warning(tmp_path / "edited.sseal.manifest.json", str(envelope))
    opened = run("open", str(envelope), "-o", str(tmp_path / "out.png"), "--as", "lee")
    assert opened.code == 0, opened.err
    assert opened.err.splitlines() == [warning]
    assert [line.split()[0] for line in opened.out.splitlines()] == ["opened", "verified:"]
    for extra in ((), ("--as", "lee")):
        verified = run("verify", str(envelope), *extra)
        assert verified.code == 0, verified.err
        assert verified.err.splitlines() == [warning]
        assert verified.out.splitlines()[-1].startswith(f"verified {envelope}: ")
        assert "warning" not in verified.out


def test_a_clean_seal_gets_no_warning(tmp_path, cards, run):
    envelope = tmp_path / "scan.sseal"
    _seal(run, cards, make_png(tmp_path / "scan.png", 96, 96), envelope)
    assert (
        json.loads((tmp_path / "scan.sseal.manifest.json").read_text())["screen"]["tampered"]
        is False
    )
    opened = run("open", str(envelope), "-o", str(tmp_path / "out.png"), "--as", "lee")
    assert (opened.code, opened.err) == (0, "")
    verified = run("verify", str(envelope))
    assert (verified.code, verified.err) == (0, "")


def test_an_edited_verdict_is_refused_not_shown(tmp_path, cards, run):
    """Clearing the flag in the manifest file breaks its signature: no verdict is shown at all."""
    envelope = tmp_path / "edited.sseal"
    _seal(run, cards, save_png16(flagged_plane(), tmp_path / "edited.png"), envelope)
    manifest = tmp_path / "edited.sseal.manifest.json"
    manifest.write_text(manifest.read_text().replace('"tampered": true', '"tampered": false'))
    verified = run("verify", str(envelope))
    assert verified.code == 3
    assert "warning" not in verified.err


# --- send and fetch through a real gateway ---------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("verdict"), ["ito", "lee"])


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world).start()
    yield process
    process.stop()


@pytest.fixture
def remote(world: World, gateway: GatewayProcess, monkeypatch, capsys):
    return cli_against(world, gateway, monkeypatch, capsys)


def test_send_fetch_and_verify_warn_for_a_flagged_record_through_a_gateway(
    remote, world: World, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """The flag travels: the sender's warning, the recipient's on fetch, anyone's on a gateway
    verify (from the manifest the gateway sends, checked against the record CID), and the
    gateway's verify JSON carries ``screening``."""
    edited = save_png16(flagged_plane(), tmp_path / "edited.png")
    clean = make_png(tmp_path / "clean.png", 96, 96)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    sent = remote("send", str(edited), str(clean), "--to", str(world.cards["lee"]), "--as", "ito",
                  "--workdir", str(outbox))  # fmt: skip
    assert sent.code == 0, sent.err
    flagged, unflagged = re.findall(r"record (b[a-z2-7]+)", sent.out)
    assert sent.out.splitlines() == [
        f"edited.png  record {flagged}",
        f"clean.png  record {unflagged}",
    ]
    signed = outbox / "edited.png.sseal.manifest.json"
    lee = IdentityCard.load(world.cards["lee"])
    assert sent.err.splitlines() == [
        expected_warning(signed, "edited.png"),
        f"sealed for lee  fingerprint {lee.fingerprint}",
    ]

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fetched = remote("fetch", flagged, unflagged, "-o", str(inbox), "--as", "lee")
    assert fetched.code == 0, fetched.err
    assert fetched.err.splitlines() == [expected_warning(signed, flagged)]  # the clean one: none
    assert (inbox / flagged).read_bytes() == edited.read_bytes()
    assert [line.split()[0] for line in fetched.out.splitlines()] == [flagged, unflagged]

    checked = remote("verify", flagged, "--gateway", gateway.url)  # the manifest, CID-checked
    assert checked.code == 0, checked.err
    assert checked.err.splitlines() == [expected_warning(signed, flagged)]
    assert (
        checked.out.splitlines()[-1] == f"verified {flagged} at {gateway.url}: public (no key used)"
    )
    quiet = remote("verify", unflagged, "--gateway", gateway.url)
    assert (quiet.code, quiet.err) == (0, "")

    answer = httpx.get(f"{gateway.url}/v1/records/{flagged}/verify", timeout=30).json()
    screen = json.loads(signed.read_text())["screen"]
    assert answer["screening"] == {
        "flagged": True, "score": screen["score"], "threshold": screen["threshold"],
        "model_version": screen["model_version"], "policy": "flag",
    }  # fmt: skip
    assert answer["manifest"] == signed.read_text()
    clean_answer = httpx.get(f"{gateway.url}/v1/records/{unflagged}/verify", timeout=30).json()
    assert clean_answer["screening"]["flagged"] is False
