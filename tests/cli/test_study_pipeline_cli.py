"""`send DIR` and `fetch STUDY` with several instances in flight, against a real `scanseal serve`:
each instance's line still in file (or inbox) order, every file fetched byte for byte whether
the catalogue opened it while describing or after an `inbox`, and an instance that cannot be
written named while the others are written and a re-run completes it."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest

from cli_support import Result, against_gateway
from gateway_harness import PASSPHRASE, GatewayProcess, World, make_world
from scanseal.transfer.study import expand
from study_objects import ct_images, mixed_study, write

RECORD = re.compile(r"^(\S+)  record (b[a-z2-7]+)", re.MULTILINE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pipeline"), ["ito", "lee", "novak"])


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world).start()
    yield process
    process.stop()


@pytest.fixture
def run(world: World, gateway: GatewayProcess, monkeypatch, capsys):
    return against_gateway(monkeypatch, capsys, world.home, gateway.url, PASSPHRASE)


def a_study(folder: Path, images: int = 7) -> tuple[str, list[Path]]:
    """A study of ``images`` CT slices and every object without pixels, in one folder."""
    datasets = mixed_study(1)
    datasets[1:1] = ct_images(str(datasets[0].StudyInstanceUID), images - 1,
                              str(datasets[0].SeriesInstanceUID))  # fmt: skip
    return str(datasets[0].StudyInstanceUID), write(datasets, folder)


def send(run, world: World, folder: Path, workdir: Path, *to: str) -> Result:
    cards = [arg for name in to for arg in ("--to", str(world.cards[name]))]
    return run("send", str(folder), *cards, "--as", "ito", "--workdir", str(workdir))


def target(out: Path, study: str, source: Path) -> Path:
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    return out / study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"


def test_send_lines_come_in_file_order_and_fetch_writes_every_file(run, world, tmp_path):
    """Sealed several at a time, each instance's line still in the order of the files; then
    fetched several at a time, by a reader whose catalogue opens each record as it describes
    it and by one who listed the inbox first (every record described, then fetched)."""
    study, paths = a_study(tmp_path / "study")
    sent = send(run, world, tmp_path / "study", tmp_path / "out", "lee", "novak")
    assert sent.code == 0, sent.err
    assert [name for name, _record in RECORD.findall(sent.out)] == [
        p.name for p in expand([tmp_path / "study"])
    ]
    assert f"study {study}: {len(paths)} instance(s), {len(paths)} sent" in sent.out
    assert run("inbox", "--as", "novak").code == 0  # novak's records all described already
    for reader in ("lee", "novak"):
        out = tmp_path / reader
        fetched = run("fetch", study, "-o", str(out), "--as", reader)
        assert fetched.code == 0, fetched.err
        assert f"{len(paths)} instance(s), {len(paths)} fetched, 0 already here" in fetched.out
        for source in paths:
            assert target(out, study, source).read_bytes() == source.read_bytes()


def test_an_instance_that_cannot_be_written_is_named_and_a_rerun_completes(run, world, tmp_path):
    """A directory where one instance's file should go: that instance is named (its record
    and path), the fetch exits non-zero without a traceback, every other instance is written;
    once the way is clear, the same command fetches only that one."""
    study, paths = a_study(tmp_path / "study", images=5)
    assert send(run, world, tmp_path / "study", tmp_path / "out", "lee").code == 0
    out = tmp_path / "fetched"
    blocked = target(out, study, paths[2])
    (blocked / "in-the-way").mkdir(parents=True)
    fetched = run("fetch", study, "-o", str(out), "--as", "lee")
    assert fetched.code != 0
    assert "Traceback" not in fetched.err
    (error,) = [line for line in fetched.err.splitlines() if line.startswith("error:")]
    assert str(blocked) in error
    assert re.search(r"error: b[a-z2-7]+ -> ", error)
    others = [p for p in paths if p != paths[2]]
    count = len(paths)
    assert f"{count} instance(s), {count - 1} fetched, 0 already here, 1 failed" in fetched.out
    for source in others:
        assert target(out, study, source).read_bytes() == source.read_bytes()
    (blocked / "in-the-way").rmdir()
    blocked.rmdir()
    again = run("fetch", study, "-o", str(out), "--as", "lee")
    assert again.code == 0, again.err
    assert f"{count} instance(s), 1 fetched, {count - 1} already here" in again.out
    assert blocked.read_bytes() == paths[2].read_bytes()
