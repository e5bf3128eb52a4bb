"""Local seal/open/verify: round trips over real images, and attacks on envelope and manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from corpus import dicom_corpus, make_jpeg, make_png
from scanseal.crypto import envelope
from scanseal.crypto.identity import Identity, Keystore
from scanseal.crypto.stanzas import RECIPIENT_KINDS
from scanseal.errors import IntegrityError, InvalidInput, NotARecipient
from scanseal.transfer import _output, local
from scanseal.transfer.local import (
    manifest_path_for,
    open_sealed,
    seal_file,
    verify_sealed,
)
from scanseal.transfer.manifest import Manifest


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("gateway", "lee", "okafor")}


def _leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".part")]


def _seal(tmp_path: Path, people: dict[str, Identity], source: Path, **kw: object) -> Path:
    sealed = seal_file(source, [people["lee"].card], people["gateway"], tmp_path / "x.sseal", **kw)
    return sealed.envelope


def test_every_corpus_dicom_round_trips_byte_for_byte(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    files = dicom_corpus()
    assert len(files) >= 50
    for index, source in enumerate(files):
        env = tmp_path / f"{index}.sseal"
        seal_file(source, [people["lee"].card], people["gateway"], env, timestamp=1_790_000_000)
        opened = open_sealed(env, people["lee"], tmp_path / f"{index}.out")
        assert opened.path.read_bytes() == source.read_bytes(), source.name
        assert opened.metadata.format == "dicom"


@pytest.mark.parametrize(
    "maker",
    [
        lambda p: make_png(p / "g8.png"),
        lambda p: make_png(p / "g16.png", bits=16),
        lambda p: make_png(p / "rgb.png", rgb=True),
        lambda p: make_jpeg(p / "g.jpg"),
        lambda p: make_jpeg(p / "rgb.jpg", rgb=True, progressive=True),
    ],
)
def test_png_and_jpeg_round_trip(tmp_path: Path, people: dict[str, Identity], maker) -> None:
    source = maker(tmp_path)
    env = _seal(tmp_path, people, source)
    assert (
        open_sealed(env, people["lee"], tmp_path / "out").path.read_bytes() == source.read_bytes()
    )


@pytest.mark.parametrize("kind", RECIPIENT_KINDS)
def test_each_wrapping_kind(tmp_path: Path, people: dict[str, Identity], kind: str) -> None:
    source = make_png(tmp_path / "a.png")
    env = _seal(tmp_path, people, source, kind=kind)
    header = envelope.read_header(env.open("rb"))
    assert [s.kind for s in header.stanzas] == [kind]
    assert open_sealed(env, people["lee"], tmp_path / "o").path.read_bytes() == source.read_bytes()


def test_stranger_is_refused_and_nothing_is_written(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    with pytest.raises(NotARecipient):
        open_sealed(env, people["okafor"], tmp_path / "stolen.png")
    assert not (tmp_path / "stolen.png").exists()
    assert _leftovers(tmp_path) == []


def test_tampered_payload_leaves_no_plaintext(tmp_path: Path, people: dict[str, Identity]) -> None:
    source = make_png(tmp_path / "big.png", rows=400, cols=400)
    env = _seal(tmp_path, people, source, segment_size=1024)
    data = bytearray(env.read_bytes())
    data[-10] ^= 0x40  # the last segment: earlier segments decrypt before the failure
    env.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        open_sealed(env, people["lee"], tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()
    assert _leftovers(tmp_path) == []


def _rewrite_manifest(env: Path, edit) -> None:
    path = manifest_path_for(env)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["image"].__setitem__("h1", "00" * 32),
        lambda d: d["image"].__setitem__("timestamp", d["image"]["timestamp"] + 1),
        lambda d: d["image"].__setitem__("pixel_digest", "11" * 32),
        lambda d: d["envelope"].__setitem__("size", d["envelope"]["size"] + 1),
        lambda d: d["recipients"][0].__setitem__("name", "mallory"),
        lambda d: d["uploader"].__setitem__("name", "mallory"),
        lambda d: d.__setitem__(
            "cid", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        ),
        lambda d: d.__setitem__("signature", "0x" + "ab" * 65),
    ],
)
def test_manifest_edits_break_the_signature(
    tmp_path: Path, people: dict[str, Identity], edit
) -> None:
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    _rewrite_manifest(env, edit)
    with pytest.raises(IntegrityError):
        verify_sealed(env)
    with pytest.raises(IntegrityError):
        open_sealed(env, people["lee"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.pop("signature"),
        lambda d: d.__setitem__("extra", 1),
        lambda d: d["image"].__setitem__("h1", "zz"),
        lambda d: d.__setitem__("recipients", []),
        lambda d: d.__setitem__("scanseal_manifest", 2),
    ],
)
def test_malformed_manifest_is_invalid_input(
    tmp_path: Path, people: dict[str, Identity], edit
) -> None:
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    _rewrite_manifest(env, edit)
    with pytest.raises(InvalidInput):
        verify_sealed(env)


def test_uploader_forged_by_a_recipient_is_detected(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    """Re-signing with another key changes the signer: the manifest must name the real signer."""
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    manifest = Manifest.load(manifest_path_for(env))
    forged = manifest.signed_by(people["lee"].sign)  # lee signs but the uploader is still gateway
    forged.save(manifest_path_for(env))
    with pytest.raises(IntegrityError, match="signature is by"):
        verify_sealed(env)


def test_recipient_cannot_add_someone_to_the_header(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    """Lee knows the file key and re-wraps for okafor; the signed manifest no longer matches."""
    source = make_png(tmp_path / "a.png")
    env = tmp_path / "x.sseal"
    seal_file(source, [people["lee"].card], people["gateway"], env)
    raw = env.read_bytes()
    header = envelope.read_header(env.open("rb"))
    file_key = envelope.unlock(header, people["lee"].transport_keys.values())
    stanza = people["okafor"].card.recipient("x25519").wrap(file_key)
    widened = envelope.rewrap(header, file_key, [*header.stanzas, stanza])
    env.write_bytes(widened.encoded + raw[len(header.encoded) :])
    with pytest.raises(IntegrityError, match="manifest"):
        open_sealed(env, people["okafor"], tmp_path / "o")
    with pytest.raises(IntegrityError):
        verify_sealed(env)


def test_manifest_of_another_envelope_is_rejected(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    a = seal_file(
        make_png(tmp_path / "a.png"), [people["lee"].card], people["gateway"], tmp_path / "a.sseal"
    )
    b = seal_file(
        make_png(tmp_path / "b.png", seed=1),
        [people["lee"].card],
        people["gateway"],
        tmp_path / "b.sseal",
    )
    with pytest.raises(IntegrityError, match="digest"):
        open_sealed(a.envelope, people["lee"], tmp_path / "o", manifest_path=b.manifest_path)


def test_verify_levels(tmp_path: Path, people: dict[str, Identity]) -> None:
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    public = verify_sealed(env)
    full = verify_sealed(env, people["lee"])
    assert not public.decrypted
    assert full.decrypted
    assert len(full.checks) > len(public.checks)
    assert [p for p in tmp_path.iterdir() if p.suffix not in {".png", ".sseal", ".json"}] == []


def test_seal_failure_leaves_neither_file(tmp_path: Path, people: dict[str, Identity]) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 10)
    with pytest.raises(InvalidInput):
        seal_file(bad, [people["lee"].card], people["gateway"], tmp_path / "x.sseal")
    assert not (tmp_path / "x.sseal").exists()
    assert not manifest_path_for(tmp_path / "x.sseal").exists()
    assert _leftovers(tmp_path) == []


def test_manifest_round_trips_through_json(tmp_path: Path, people: dict[str, Identity]) -> None:
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    manifest = Manifest.load(manifest_path_for(env))
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert replace(manifest, cid="x").signed_bytes() != manifest.signed_bytes()


def test_a_false_pixel_digest_is_caught_by_verify(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    """Even the uploader's own signed claim about the pixels is audited by a full verify."""
    env = _seal(tmp_path, people, make_png(tmp_path / "a.png"))
    manifest = Manifest.load(manifest_path_for(env))
    lie = replace(manifest, pixel_digest=bytes(32)).signed_by(people["gateway"].sign)
    lie.save(manifest_path_for(env))
    verify_sealed(env)  # public checks cannot see pixels
    with pytest.raises(IntegrityError, match="pixel digest"):
        verify_sealed(env, people["lee"])
    assert open_sealed(env, people["lee"], tmp_path / "o.png").path.exists()


# --- no plaintext under a name before every check held ----------------------------------------


def _has_unnamed_files(directory: Path) -> bool:
    fd = _output._unnamed_file(directory)
    if fd is None:
        return False
    os.close(fd)
    return True


def _damaged(tmp_path: Path, people: dict[str, Identity], damage: str) -> Path:
    """A 400 × 400 PNG sealed in 1 KiB segments, then truncated or with its last segment hit."""
    env = _seal(
        tmp_path, people, make_png(tmp_path / "big.png", rows=400, cols=400), segment_size=1024
    )
    data = bytearray(env.read_bytes())
    if damage == "truncate":
        del data[-300:]
    else:
        data[-10] ^= 0x40
    env.write_bytes(bytes(data))
    return env


@pytest.mark.parametrize("damage", ["truncate", "tamper last segment"])
def test_failed_open_leaves_the_directory_as_it_was(
    tmp_path: Path, people: dict[str, Identity], damage: str
) -> None:
    env = _damaged(tmp_path, people, damage)
    out = tmp_path / "out"
    out.mkdir()
    (out / "other.txt").write_text("unrelated")
    with pytest.raises(IntegrityError):
        open_sealed(env, people["lee"], out / "scan.png")
    assert [p.name for p in out.iterdir()] == ["other.txt"]


def test_no_directory_entry_holds_plaintext_during_an_open(
    tmp_path: Path, people: dict[str, Identity]
) -> None:
    """Looked at while segments are being written: the output directory stays empty."""
    out = tmp_path / "out"
    out.mkdir()
    if not _has_unnamed_files(out):
        pytest.skip("no O_TMPFILE on this file system: the fallback names a temporary file")
    listings: list[list[Path]] = []

    def look(_: int) -> None:
        listings.append(list(out.iterdir()))

    with pytest.raises(IntegrityError):
        open_sealed(
            _damaged(tmp_path, people, "tamper"), people["lee"], out / "a.png", progress=look
        )
    assert len(listings) > 10
    assert all(listing == [] for listing in listings)

    listings.clear()
    source = make_png(tmp_path / "good.png", rows=200, cols=200)
    env = seal_file(
        source, [people["lee"].card], people["gateway"], tmp_path / "good.sseal", segment_size=1024
    ).envelope
    opened = open_sealed(env, people["lee"], out / "a.png", progress=look)
    assert all(listing == [] for listing in listings)
    assert list(out.iterdir()) == [out / "a.png"]
    assert opened.path.read_bytes() == source.read_bytes()
    assert (out / "a.png").stat().st_mode & 0o777 == 0o600


def test_an_existing_output_is_replaced_whole(tmp_path: Path, people: dict[str, Identity]) -> None:
    source = make_png(tmp_path / "a.png")
    env = _seal(tmp_path, people, source)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old contents")
    open_sealed(env, people["lee"], out / "a.png")
    assert (out / "a.png").read_bytes() == source.read_bytes()
    assert list(out.iterdir()) == [out / "a.png"]


def test_without_o_tmpfile_the_named_fallback_still_cleans_up(
    tmp_path: Path, people: dict[str, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_output, "_unnamed_file", lambda _directory: None)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IntegrityError):
        open_sealed(_damaged(tmp_path, people, "tamper"), people["lee"], out / "a.png")
    assert list(out.iterdir()) == []
    source = make_png(tmp_path / "b.png", seed=3)
    open_sealed(_seal(tmp_path, people, source), people["lee"], out / "b.png")
    assert list(out.iterdir()) == [out / "b.png"]
    assert (out / "b.png").read_bytes() == source.read_bytes()


_KILLED_OPEN = """
import sys, time
from pathlib import Path
from corpus import make_png
from scanseal.crypto.identity import Keystore
from scanseal.transfer.local import open_sealed, seal_file

work, out = Path(sys.argv[1]), Path(sys.argv[2])
store = Keystore(work / "keys", scrypt_n=2**10)
gateway, lee = store.create("gateway", "pw"), store.create("lee", "pw")
source = make_png(work / "scan.png", rows=300, cols=300)
env = seal_file(source, [lee.card], gateway, work / "x.sseal", segment_size=1024).envelope
calls = []

def stall(_):
    calls.append(1)
    if len(calls) == 20:  # 19 segments of plaintext written by now
        print("stalled", flush=True)
        time.sleep(60)

open_sealed(env, lee, out / "scan.png", progress=stall)
"""


def test_a_killed_open_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL in the middle of an open: the kernel drops the unnamed file with the process."""
    out = tmp_path / "out"
    out.mkdir()
    if not _has_unnamed_files(out):
        pytest.skip("no O_TMPFILE on this file system: a crash leaves the fallback's .part file")
    tests_dir = Path(__file__).parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(local.__file__).parents[2]), str(tests_dir), env.get("PYTHONPATH", "")]
    )
    child = subprocess.Popen(  # our own interpreter
        [sys.executable, "-c", _KILLED_OPEN, str(tmp_path), str(out)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "stalled\n"
        assert list(out.iterdir()) == []
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert list(out.iterdir()) == []
