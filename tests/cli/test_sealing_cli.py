"""``scanseal seal|open|verify``: what a user sees, including for every malformed input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import scanseal
from cli_support import FAST, PASSPHRASE, Result, one_error_line
from corpus import make_png
from ingest.test_malformed import CASES
from scanseal.crypto.identity import Keystore
from vectors import make_malformed as malformed


@pytest.fixture
def cards(home):
    """Three cheap identities and the card files a sender would be handed."""
    store = Keystore(home / "keys", scrypt_n=FAST)
    paths = {}
    for name in ("gateway", "lee", "okafor"):
        card = store.create(name, PASSPHRASE).card
        paths[name] = home / f"{name}.card.json"
        paths[name].write_text(card.to_json())
    return paths


def _seal(run, cards, source, out):
    return run("seal", str(source), "--to", str(cards["lee"]), "-o", str(out), "--as", "gateway")


def test_seal_open_verify(tmp_path, cards, run):
    source = make_png(tmp_path / "scan.png")
    sealed = _seal(run, cards, source, tmp_path / "scan.sseal")
    assert sealed.code == 0, sealed.err
    assert "scan.sseal" in sealed.out
    opened = run(
        "open", str(tmp_path / "scan.sseal"), "-o", str(tmp_path / "out.png"), "--as", "lee"
    )
    assert opened.code == 0, opened.err
    assert (tmp_path / "out.png").read_bytes() == source.read_bytes()
    public = run("verify", str(tmp_path / "scan.sseal"))
    assert public.code == 0
    assert "public" in public.out
    full = run("verify", str(tmp_path / "scan.sseal"), "--as", "lee")
    assert full.code == 0
    assert "full" in full.out


def test_stranger_exits_4(tmp_path, cards, run):
    _seal(run, cards, make_png(tmp_path / "a.png"), tmp_path / "a.sseal")
    result = run("open", str(tmp_path / "a.sseal"), "-o", str(tmp_path / "o"), "--as", "okafor")
    assert result.code == 4
    assert "not a recipient" in one_error_line(result)
    assert not (tmp_path / "o").exists()


def test_tampered_envelope_exits_3(tmp_path, cards, run):
    _seal(run, cards, make_png(tmp_path / "a.png"), tmp_path / "a.sseal")
    data = bytearray((tmp_path / "a.sseal").read_bytes())
    data[-1] ^= 1
    (tmp_path / "a.sseal").write_bytes(bytes(data))
    result = run("open", str(tmp_path / "a.sseal"), "-o", str(tmp_path / "o"), "--as", "lee")
    assert result.code == 3
    one_error_line(result)
    assert not (tmp_path / "o").exists()
    assert run("verify", str(tmp_path / "a.sseal")).code == 3


def test_missing_manifest_and_envelope_exit_2(tmp_path, cards, run):
    _seal(run, cards, make_png(tmp_path / "a.png"), tmp_path / "a.sseal")
    (tmp_path / "a.sseal.manifest.json").unlink()
    assert "manifest not found" in one_error_line(run("verify", str(tmp_path / "a.sseal")))
    missing = run("verify", str(tmp_path / "nope.sseal"))
    assert missing.code == 2
    assert "no such envelope" in one_error_line(missing)


def test_ambiguous_identity_is_explained(tmp_path, cards, run):
    result = run("seal", str(make_png(tmp_path / "a.png")), "--to", str(cards["lee"]), "-o", "x")
    assert result.code == 2
    assert "--as" in one_error_line(result)


def test_wrong_passphrase_exits_4(tmp_path, cards, run, monkeypatch):
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", "not it")
    result = _seal(run, cards, make_png(tmp_path / "a.png"), tmp_path / "a.sseal")
    assert result.code == 4
    one_error_line(result)


def test_forged_card_is_refused(tmp_path, cards, run):
    text = cards["lee"].read_text().replace(cards["lee"].read_text()[200:204], "AAAA", 1)
    forged = tmp_path / "forged.json"
    forged.write_text(text)
    result = _seal(run, {"lee": forged}, make_png(tmp_path / "a.png"), tmp_path / "a.sseal")
    assert result.code in (2, 3)
    one_error_line(result)


def test_at_least_25_malformed_inputs():
    assert len(CASES) >= 25


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_exits_2_with_one_line(tmp_path, cards, run, build, expected):
    bad = build(tmp_path)
    result = _seal(run, cards, bad, tmp_path / "bad.sseal")
    assert result.code == 2
    line = one_error_line(result)
    assert expected in line
    assert not (tmp_path / "bad.sseal").exists()
    assert not (tmp_path / "bad.sseal.manifest.json").exists()
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def _process(home: Path, *args: str) -> Result:
    """Run ``python -m scanseal ARGS`` as a real process: nothing filters its stderr."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    source_root = str(Path(scanseal.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([source_root, env.get("PYTHONPATH", "")])
    env["SCANSEAL_HOME"] = str(home)
    done = subprocess.run(  # our own interpreter and module
        [sys.executable, "-m", "scanseal", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    return Result(done.returncode, done.stdout, done.stderr)


# The files whose libraries warn on stderr (pydicom, Pillow) plus a few other kinds of refusal.
WARNING_PRONE = [
    "broken-meta.dcm",
    "png-bomb.png",
    "undecodable-jpeg-frame.dcm",
    "length-past-eof.dcm",
]


@pytest.mark.parametrize("name", WARNING_PRONE)
def test_seal_process_prints_one_line_for_bad_input(tmp_path, cards, home, name):
    """No library warning or traceback above the error, and nothing written."""
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "bad.sseal"
    result = _process(
        home, "seal", str(malformed.DIRECTORY / name), "--to", str(cards["lee"]), "-o", str(out),
        "--as", "gateway", "--no-store",
    )  # fmt: skip
    assert result.code == 2, result.err
    assert one_error_line(result).startswith(f"error: {name}: ")
    assert list((tmp_path / "out").iterdir()) == []


def test_screen_process_refuses_every_malformed_file_quietly(tmp_path, home):
    """One process over every committed file: one ERROR line each on stdout, one line on stderr."""
    files = [str(case.path) for case in malformed.CASES]
    result = _process(home, "screen", *files, str(tmp_path / "missing.png"))
    assert result.code == 2
    assert (
        one_error_line(result)
        == f"error: {len(files) + 1} of {len(files) + 1} inputs could not be screened"
    )
    lines = result.out.splitlines()
    names = [case.file for case in malformed.CASES] + ["missing.png"]
    assert [line.split()[:2] for line in lines] == [["ERROR", f"{n}:"] for n in names]


def test_open_and_verify_by_manifest_cid(tmp_path, cards, run):
    source = make_png(tmp_path / "scan.png")
    sealed = _seal(run, cards, source, tmp_path / "scan.sseal")
    receipt = next(line for line in sealed.out.splitlines() if line.startswith("manifest CID"))
    manifest_cid = receipt.split()[2]
    (tmp_path / "scan.sseal").unlink()  # only the store holds it now
    opened = run("open", manifest_cid, "-o", str(tmp_path / "out.png"), "--as", "lee")
    assert opened.code == 0, opened.err
    assert (tmp_path / "out.png").read_bytes() == source.read_bytes()
    verified = run("verify", manifest_cid)
    assert verified.code == 0
    assert "CID" in verified.out


def test_no_store_leaves_the_cid_empty(tmp_path, cards, run):
    result = run(
        "seal", str(make_png(tmp_path / "a.png")), "--to", str(cards["lee"]),
        "-o", str(tmp_path / "a.sseal"), "--as", "gateway", "--no-store",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "CID" not in result.out
    assert '"cid": null' in (tmp_path / "a.sseal.manifest.json").read_text()


def test_bracketed_paths_print_as_they_are(tmp_path, cards, run):
    """A folder named like a TOML table or Rich markup ("[bold]") shows literally in output."""
    folder = tmp_path / "[bold]study"
    folder.mkdir()
    source = make_png(folder / "[gateway].png")
    sealed = _seal(run, cards, source, folder / "[red]scan.sseal")
    assert sealed.code == 0, sealed.err
    assert "[bold]study" in sealed.out
    assert "[gateway].png" in sealed.out
    assert "[red]scan.sseal" in sealed.out


def test_objects_without_pixels_seal_open_and_verify(tmp_path, cards, run):
    """An RT plan, an SR, a key-object selection, a presentation state and a PDF: sealed with
    "not screened: no pixels" signed, opened byte for byte, verified with the content digest."""
    from study_objects import mixed_study, write

    for source in write(mixed_study(1)[1:], tmp_path / "in"):
        out = tmp_path / f"{source.stem}.sseal"
        sealed = _seal(run, cards, source, out)
        assert sealed.code == 0, sealed.err
        assert "screen not screened: no pixels" in sealed.out
        opened = run("open", str(out), "-o", str(tmp_path / source.name), "--as", "lee")
        assert opened.code == 0, opened.err
        assert (tmp_path / source.name).read_bytes() == source.read_bytes()
        full = run("verify", str(out), "--as", "lee")
        assert full.code == 0, full.err
        assert "pixel digest matches" in full.out
