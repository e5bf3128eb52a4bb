"""Studies as the unit, through the CLI against a real `scanseal serve`: `send DIR` grouped by
study and idempotent (a kill mid-way included), `inbox`, `fetch STUDY` into
study/series/instance files (resumable), and study grants, revocations and audits."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pydicom
import pytest
from tests.dicom.scu import same_instance

from cli.crafted import crafted_rle
from cli_support import Result, against_gateway, one_error_line
from gateway_harness import PASSPHRASE, GatewayProcess, World, free_port, make_world
from scanseal.client import GatewayClient
from scanseal.errors import AccessDenied, NotFound
from scanseal.storage import cid_of
from scanseal.transfer.study import SEND_LOG, Instance, StudySender
from scanseal.transfer.study_manifest import StudyManifest, verify_member
from study_objects import mixed_study, write

RECORD = re.compile(r"record (b[a-z2-7]+)")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("studies"), ["ito", "lee", "novak"])


@pytest.fixture(scope="module")
def gateway(world: World):
    process = GatewayProcess(world).start()
    yield process
    process.stop()


@pytest.fixture
def run(world: World, gateway: GatewayProcess, monkeypatch, capsys):
    return against_gateway(monkeypatch, capsys, world.home, gateway.url, PASSPHRASE)


def records(world: World) -> int:
    db = world.home / "gateway" / "gateway.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])


def study_tree(root: Path, images: int = 2, only: int | None = None) -> tuple[str, list[Path]]:
    """A mixed study written as a PACS export would: one folder per series, and the same file
    names (IM0000, IM0001, …) in every folder (``only``: its first objects alone)."""
    datasets = mixed_study(images)[:only]
    series: dict[str, list[Path]] = {}
    for ds in datasets:
        names = series.setdefault(ds.SeriesInstanceUID, [])
        folder = root / f"SE{list(series).index(ds.SeriesInstanceUID):03d}"
        (written,) = write([ds], folder)
        names.append(written.rename(folder / f"IM{len(names):04d}"))
    return str(datasets[0].StudyInstanceUID), [p for names in series.values() for p in names]


def summary(study: str, count: int, sent: int, skipped: int, failed: int = 0) -> str:
    return (
        f"study {study}: {count} instance(s), {sent} sent, {skipped} already sent, {failed} failed"
    )


def send(run, world: World, *sources: Path, workdir: Path, to: str = "lee") -> Result:
    return run("send", *map(str, sources), "--to", str(world.cards[to]), "--as", "ito",
               "--workdir", str(workdir))  # fmt: skip


def test_send_a_directory_by_study_then_again_sends_nothing(run, world, gateway, tmp_path):
    first, first_paths = study_tree(tmp_path / "export" / "A")
    second, second_paths = study_tree(tmp_path / "export" / "B", images=1)
    (tmp_path / "export" / "DICOMDIR").write_bytes(b"not an instance")  # an index: left out
    before = records(world)
    sent = send(run, world, tmp_path / "export", workdir=tmp_path / "out")
    assert sent.code == 0, sent.err
    count = len(first_paths) + len(second_paths)
    assert len(RECORD.findall(sent.out)) == count
    assert records(world) == before + count
    lines = sent.out.splitlines()
    assert summary(first, len(first_paths), len(first_paths), 0) in lines
    assert summary(second, len(second_paths), len(second_paths), 0) in lines
    assert len(list((tmp_path / "out").glob("*.sseal"))) == count  # same names: no overwrite
    sent_records = RECORD.findall(sent.out)
    for study, paths in ((first, first_paths), (second, second_paths)):
        (line,) = [x for x in lines if x.startswith(f"study {study}: registered as study ")]
        manifest = StudyManifest.from_bytes(Path(line.split()[-1]).read_bytes())
        manifest.verify(study)
        study_cid = line.split()[5].rstrip(",")
        with GatewayClient(gateway.url) as anyone:  # public: the manifest and its ledger record
            assert anyone.study(study_cid) == manifest
        assert manifest.uploader_address == world.people["ito"].address
        assert len(manifest.instances) == len(paths)
        assert set(manifest.instances) <= set(sent_records)
        index, proof = manifest.proof(manifest.instances[-1])
        verify_member(manifest.instances[-1], index, proof, len(paths), manifest.merkle_root)

    again = send(run, world, tmp_path / "export", workdir=tmp_path / "out")
    assert again.code == 0, again.err
    assert RECORD.findall(again.out) == RECORD.findall(sent.out)
    assert again.out.count("(already sent)") == count
    assert summary(first, len(first_paths), 0, len(first_paths)) in again.out.splitlines()
    assert records(world) == before + count
    registered = [x for x in lines if " registered as study " in x]
    assert [x for x in again.out.splitlines() if " registered as study " in x] == registered
    other = send(run, world, first_paths[0], workdir=tmp_path / "out", to="novak")
    assert "(already sent)" not in other.out  # to someone else: a send of its own
    assert records(world) == before + count + 1


def test_send_keeps_its_envelopes_and_log_in_the_home_by_default(run, world, tmp_path, monkeypatch):
    """Without --workdir nothing is written where the command runs: the envelopes, the send
    log and the study manifest go to $SCANSEAL_HOME/outbox, so a re-run elsewhere skips; the
    study record CID it prints is what grant, revoke and fetch take for the study."""
    study, paths = study_tree(tmp_path / "study", images=1, only=1)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    sent = run("send", str(paths[0]), "--to", str(world.cards["lee"]), "--as", "ito")
    assert sent.code == 0, sent.err
    assert list(here.iterdir()) == []
    outbox = world.home / "outbox"
    assert list(outbox.glob("*.sseal"))
    assert list(outbox.glob("study-*.json"))
    monkeypatch.chdir(tmp_path)
    again = run("send", str(paths[0]), "--to", str(world.cards["lee"]), "--as", "ito")
    assert again.out.count("(already sent)") == 1

    # the study record's CID, as send printed it, is what grant and revoke take too
    (line,) = [x for x in sent.out.splitlines() if "registered as study" in x]
    study_cid, (record,) = line.split()[5].rstrip(","), RECORD.findall(sent.out)
    granted = run("grant", study_cid, "--to", str(world.cards["novak"]), "--as", "ito")
    assert granted.code == 0, granted.err
    assert granted.out.endswith(
        f"study record {study_cid}, 1 instance(s); 1 ledger transaction(s)\n"
    )
    assert run("fetch", record, "-o", str(tmp_path / "n.dcm"), "--as", "novak").code == 0
    whole = run("fetch", study_cid, "-o", str(tmp_path / "s"), "--as", "novak")  # as its study
    assert whole.code == 0, whole.err
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    fetched = tmp_path / "s" / study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    assert fetched.read_bytes() == paths[0].read_bytes()
    revoked = run("revoke", study_cid, "--from", str(world.cards["novak"]), "--as", "ito")
    assert revoked.code == 0, revoked.err
    assert run("fetch", record, "-o", str(tmp_path / "m.dcm"), "--as", "novak").code != 0


def test_a_failing_instance_is_named_and_the_others_are_sent(run, world, tmp_path):
    """A file ingest refuses (truncated) and an instance of the study whose pixels do not
    decode: both named, exit 2, every other instance sent, and no study manifest for a study
    that is not all there."""
    study, paths = study_tree(tmp_path / "study", images=1)
    broken = paths[0].parent / "broken.dcm"
    broken.write_bytes(paths[0].read_bytes()[:600])  # truncated
    undecodable = pydicom.dcmread(crafted_rle(tmp_path / "crafted.dcm"))
    undecodable.StudyInstanceUID = study
    undecodable.save_as(paths[0].parent / "undecodable.dcm", enforce_file_format=True)
    before = records(world)
    sent = send(run, world, tmp_path / "study", workdir=tmp_path / "out")
    assert sent.code == 2  # InvalidInput, as for one bad file
    errors = [line for line in sent.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any(e.startswith(f"error: {broken.name}: truncated DICOM") for e in errors)
    assert any("undecodable.dcm" in e and "Pixel Data" in e for e in errors)
    assert "2 of " in sent.err
    assert "Traceback" not in sent.err
    assert len(RECORD.findall(sent.out)) == len(paths)
    assert summary(study, len(paths) + 1, len(paths), 0, failed=1) in sent.out.splitlines()
    assert "registered as study" not in sent.out  # not all there: no study manifest for it
    assert records(world) == before + len(paths)
    missing = send(run, world, tmp_path / "nope", workdir=tmp_path / "out")
    assert missing.code == 2
    assert "no such file or directory" in one_error_line(missing)


def test_a_send_killed_mid_way_completes_without_duplicates(world, gateway, tmp_path):
    """SIGKILL after the first records, then the same command again: every instance once."""
    _study, paths = study_tree(tmp_path / "study", images=6)
    before = records(world)
    command = [sys.executable, "-m", "scanseal", "send", str(tmp_path / "study"), "--to",
               str(world.cards["lee"]), "--as", "ito", "--gateway", gateway.url,
               "--workdir", str(tmp_path / "out")]  # fmt: skip
    env = {**world.env(), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for _ in range(3):
        assert RECORD.search(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert before + 3 <= records(world) < before + len(paths)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(already sent)") >= 3
    assert records(world) == before + len(paths)


class _KilledAfterUpload:
    """The real gateway client, with the process 'killed' once the gateway has the upload but
    before the send log heard back: the window a pending row exists for."""

    def __init__(self, client: GatewayClient) -> None:
        self.client, self.url = client, client.url

    def upload(self, sealed, *, with_study=False):
        self.client.upload(sealed, with_study=with_study)
        raise KeyboardInterrupt

    def holds(self, record: str) -> bool:
        return self.client.holds(record)


def test_a_pending_upload_the_gateway_holds_is_not_sent_again(world, gateway, tmp_path):
    (source,) = write(mixed_study(1)[:1], tmp_path / "in")
    instance = Instance.read(source)
    before = records(world)
    with GatewayClient(gateway.url, world.people["ito"]) as client:
        card = world.people["lee"].card
        dying = StudySender(_KilledAfterUpload(client), world.people["ito"], [card], tmp_path)
        with dying, pytest.raises(KeyboardInterrupt):
            dying.send(instance)
        log = sqlite3.connect(tmp_path / SEND_LOG)
        ((state, record),) = log.execute("SELECT state, record FROM sent").fetchall()
        log.close()
        assert state == "pending"
        with StudySender(client, world.people["ito"], [card], tmp_path) as sender:
            again = sender.send(instance)
    assert (again.skipped, again.record) == (True, record)
    assert records(world) == before + 1


def test_inbox_fetch_study_and_resume(run, world, tmp_path):
    study, paths = study_tree(tmp_path / "study", images=2)
    assert send(run, world, tmp_path / "study", workdir=tmp_path / "out").code == 0
    listed = run("inbox", "--as", "lee", "--json")
    assert listed.code == 0, listed.err
    (entry,) = [s for s in json.loads(listed.out) if s["study"] == study]
    assert entry["instances"] == len(paths)
    assert entry["patient_name"] == "Study^Test"
    assert entry["senders"] == ["ito"]
    assert set(entry["modalities"]) == {"CT", "RTPLAN", "SR", "KO", "PR", "DOC"}
    assert entry["warnings"] == []
    table = run("inbox", "--as", "lee")
    assert study in table.out
    assert "Study^Test" in table.out

    out = tmp_path / "fetched"
    fetched = run("fetch", study, "-o", str(out), "--as", "lee")
    assert fetched.code == 0, fetched.err
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        target = out / study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        assert target.read_bytes() == path.read_bytes()
    expected = f"study {study}: {len(paths)} instance(s), {len(paths)} fetched, 0 already here"
    assert expected in fetched.out
    written = sorted(out.rglob("*.dcm"))
    written[0].unlink()
    written[1].write_bytes(b"changed")  # not the sealed bytes: fetched again
    resumed = run("fetch", study, "-o", str(out), "--as", "lee")
    assert resumed.code == 0, resumed.err
    assert f"{len(paths)} instance(s), 2 fetched, {len(paths) - 2} already here" in resumed.out
    assert written[1].read_bytes() != b"changed"
    stranger = run("fetch", study, "-o", str(tmp_path / "x"), "--as", "novak")
    assert stranger.code == 6  # NotFound: nothing of that study is shared with novak
    one_error_line(stranger)


def head(gateway: GatewayProcess) -> int:
    """The chain's head block (the embedded chain mines one block per transaction)."""
    return int(httpx.get(f"{gateway.url}/v1/health").json()["chain"]["head"])


def trail_of(gateway: GatewayProcess, world: World, record: str) -> list[dict]:
    with GatewayClient(gateway.url, world.people["ito"]) as ito:
        return ito.audit(record)


def test_one_study_grant_opens_every_instance_and_one_revocation_closes_them(
    run, world, gateway, tmp_path
):
    """`grant STUDY` is one ledger transaction on the study record, no grant per instance;
    each instance fetched through it is logged for that instance as allowed; `revoke STUDY`
    is one transaction again, and then every instance is refused and logged as revoked."""
    study, paths = study_tree(tmp_path / "study", images=1, only=3)  # a CT, an RT plan, an SR
    sent = send(run, world, tmp_path / "study", workdir=tmp_path / "out")
    assert sent.code == 0, sent.err
    instances = RECORD.findall(sent.out)
    (line,) = [x for x in sent.out.splitlines() if "registered as study" in x]
    study_cid = line.split()[5].rstrip(",")
    novak = world.people["novak"].address

    before = head(gateway)
    granted = run("grant", study, "--to", str(world.cards["novak"]), "--as", "ito")
    assert granted.code == 0, granted.err
    assert granted.out.splitlines() == [
        f"granted novak ({novak}) on study {study}: study record {study_cid}, "
        f"{len(paths)} instance(s); 1 ledger transaction(s)"
    ]
    assert head(gateway) == before + 1  # one transaction for the whole study
    for record in instances:  # no grant of its own on any instance
        assert not [e for e in trail_of(gateway, world, record) if e["action"] == "granted"
                    and e["subject"] == novak]  # fmt: skip

    out = tmp_path / "n"
    fetched = run("fetch", study, "-o", str(out), "--as", "novak")
    assert fetched.code == 0, fetched.err
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert (out / study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm").read_bytes() == (
            path.read_bytes()
        )
    for record in instances:  # each read logged for the instance itself, allowed
        reads = [e for e in trail_of(gateway, world, record)
                 if e["action"] == "access" and e["subject"] == novak]  # fmt: skip
        assert [(e["allowed"], e["reason"]) for e in reads] == [(True, "none")]

    before = head(gateway)
    revoked = run("revoke", study, "--from", str(world.cards["novak"]), "--as", "ito")
    assert revoked.code == 0, revoked.err
    assert revoked.out.splitlines() == [
        f"revoked {novak} on study {study}: study record {study_cid}, "
        f"{len(paths)} instance(s); 1 ledger transaction(s)"
    ]
    assert head(gateway) == before + 1
    with GatewayClient(gateway.url, world.people["novak"]) as as_novak:
        for record in instances:
            with pytest.raises(AccessDenied, match="revoked"):
                as_novak.fetch(record, tmp_path / "again.dcm")
        assert all(e["record"] not in instances for e in as_novak.inbox(0)["records"])
    for record in instances:
        reads = [e for e in trail_of(gateway, world, record)
                 if e["action"] == "access" and e["subject"] == novak]  # fmt: skip
        assert [(e["allowed"], e["reason"]) for e in reads] == [(True, "none"), (False, "revoked")]
    again = run("revoke", study, "--from", str(world.cards["novak"]), "--as", "ito")
    assert again.code == 0, again.err  # a repeated revocation changes nothing
    assert again.out.endswith("; 0 ledger transaction(s)\n")

    audit = run("audit", study, "--as", "ito", "--json", "-")
    assert audit.code == 0, audit.err
    trail = json.loads(audit.out)
    assert {e["record"] for e in trail} == set(instances)
    assert {e["action"] for e in trail} >= {"stored", "access"}
    lee = world.people["lee"].address  # the recipient: granted the study record, no instance
    assert not [e for e in trail if e["action"] == "granted" and e["subject"] == lee]

    # the study record's own trail holds the study's events and its instances', by record
    audited = run("audit", study_cid, "--as", "ito", "--json", "-")
    assert audited.code == 0, audited.err
    by_record = json.loads(audited.out)
    assert {e["record"] for e in by_record} == {study_cid, *instances}
    assert [(e["action"], e["allowed"]) for e in by_record if e["record"] == study_cid
            and e["subject"] == novak] == [("granted", None), ("revoked", None)]  # fmt: skip
    assert [e["action"] for e in by_record if e["record"] == study_cid
            and e["subject"] == lee] == ["granted"]  # at its registration  # fmt: skip
    reads = [e for e in by_record if e["action"] == "access" and e["subject"] == novak]
    assert len(reads) == 2 * len(instances)
    times = [e["time"] for e in by_record]  # ISO 8601 UTC sorts as text
    assert times == sorted(times)  # chain order across the records
    assert by_record[0]["action"] == "stored"  # the first instance stored opens it
    refused = run("audit", study_cid, "--as", "novak", "--json", "-")  # revoked: neither
    assert refused.code != 0
    assert "may not read the audit trail" in refused.err


def test_a_grant_on_one_study_opens_no_instance_of_another(run, world, gateway, tmp_path):
    """Study A granted to novak: the instances of study B (same sender, same recipients) stay
    closed to novak, each refused attempt logged on B's instance as no grant."""
    a, _paths = study_tree(tmp_path / "A", images=1, only=2)
    b, _paths = study_tree(tmp_path / "B", images=1, only=2)
    assert send(run, world, tmp_path / "A", workdir=tmp_path / "out").code == 0
    sent_b = send(run, world, tmp_path / "B", workdir=tmp_path / "out")
    assert sent_b.code == 0, sent_b.err
    assert run("grant", a, "--to", str(world.cards["novak"]), "--as", "ito").code == 0
    novak = world.people["novak"]
    with GatewayClient(gateway.url, novak) as as_novak:
        for record in RECORD.findall(sent_b.out):
            with pytest.raises(AccessDenied, match="no-grant"):
                as_novak.fetch(record, tmp_path / "b.dcm")
            (denied,) = [e for e in trail_of(gateway, world, record)
                         if e["action"] == "access" and e["subject"] == novak.address]  # fmt: skip
            assert (denied["allowed"], denied["reason"]) == (False, "no-grant")
    shut = run("fetch", b, "-o", str(tmp_path / "x"), "--as", "novak")
    assert shut.code == 6  # nothing of study B is shared with novak
    one_error_line(shut)


def test_only_the_studys_owner_grants_or_revokes_it(run, world, gateway, tmp_path):
    """Someone else's study record: a signed study grant or revocation is refused (403, one
    reason), logged on the study record as a refused grant or revocation, and the CLI, which
    finds no study record of its own, says nothing of the study is the caller's (exit 6); a
    study grant that leaves an instance without its key, or carries a grant of a record
    outside the study, is refused (400) before the ledger hears of it."""
    study, _paths = study_tree(tmp_path / "study", images=1, only=2)
    sent = send(run, world, tmp_path / "study", workdir=tmp_path / "out")
    assert sent.code == 0, sent.err
    (line,) = [x for x in sent.out.splitlines() if "registered as study" in x]
    study_cid = line.split()[5].rstrip(",")
    lee, novak = world.people["lee"], world.people["novak"]
    not_owner = run("grant", study, "--to", str(world.cards["lee"]), "--as", "novak")
    assert not_owner.code == 6
    assert "that you own" in one_error_line(not_owner)

    before = head(gateway)
    for path, action in (("grants", "grant"), ("revocations", "revoke")):
        body = json.dumps({"grantee": lee.address, "grants": []} if action == "grant"
                          else {"grantee": lee.address}).encode()  # fmt: skip
        with GatewayClient(gateway.url, novak) as as_novak:
            headers = {**as_novak.signed(action, study_cid, body),
                       "Content-Type": "application/json"}  # fmt: skip
        answer = httpx.post(f"{gateway.url}/v1/studies/{study_cid}/{path}", content=body,
                            headers=headers)  # fmt: skip
        assert answer.status_code == 403
        assert "not the owner of study record" in answer.json()["reason"]
    assert head(gateway) == before + 2  # each refusal logged (logAccess), nothing granted
    with GatewayClient(gateway.url, world.people["ito"]) as ito:
        for body in (
            {"grantee": novak.address, "grants": []},  # no key for novak's instances
            {"grantee": novak.address, "grants": ["{}"]},
        ):
            raw = json.dumps(body).encode()
            headers = {**ito.signed("grant", study_cid, raw), "Content-Type": "application/json"}
            answer = httpx.post(f"{gateway.url}/v1/studies/{study_cid}/grants", content=raw,
                                headers=headers)  # fmt: skip
            assert answer.status_code == 400, answer.text
    assert head(gateway) == before + 2
    with GatewayClient(gateway.url, novak) as as_novak:
        for record in RECORD.findall(sent.out):
            with pytest.raises(AccessDenied):
                as_novak.fetch(record, tmp_path / "x.dcm")


def test_fetch_study_to_pacs_forwards_every_object(run, world, gateway, tmp_path):
    """`fetch STUDY --to-pacs`: every object of the mixed study reaches the PACS (a pynetdicom
    Storage SCP child process), element for element."""
    study, paths = study_tree(tmp_path / "study", images=1, only=4)  # CT, RT plan, two SRs
    assert send(run, world, tmp_path / "study", workdir=tmp_path / "out").code == 0
    inbox, port = tmp_path / "pacs", free_port()
    inbox.mkdir()
    scp = Path(__file__).parents[1] / "dicom" / "pacs_scp.py"
    pacs = subprocess.Popen([sys.executable, str(scp), str(port), str(inbox)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert pacs.stdout is not None
        assert pacs.stdout.readline().strip() == "ready"
        done = run("fetch", study, "-o", str(tmp_path / "f"), "--as", "lee",
                   "--to-pacs", f"PACS@127.0.0.1:{port}")  # fmt: skip
        assert done.code == 0, done.err
        assert f"forwarded {len(paths)} instance(s)" in done.out
        for path in paths:
            same_instance(inbox / f"{pydicom.dcmread(path).SOPInstanceUID}.dcm", path)
        fetched = re.findall(r"^(b[a-z2-7]+) -> ", done.out, re.MULTILINE)
        assert len(fetched) == len(paths)
        lee = world.people["lee"].address
        with GatewayClient(gateway.url, world.people["ito"]) as ito:
            for record in fetched:  # described and written from one download
                reads = [e for e in ito.audit(record) if e["action"] == "access"]
                assert [e["subject"] for e in reads] == [lee]
    finally:
        pacs.terminate()
        pacs.wait(timeout=10)


def test_a_study_record_names_only_its_uploaders_records(run, world, gateway, tmp_path):
    """The gateway refuses a study manifest naming another's records, one it does not hold,
    one registered by someone other than its signer, and a non-canonical one; nothing of
    those reaches the ledger."""
    study, _paths = study_tree(tmp_path / "study", images=1, only=2)
    sent = send(run, world, tmp_path / "study", workdir=tmp_path / "out")
    assert sent.code == 0, sent.err
    ito_records = RECORD.findall(sent.out)
    novak, ito = world.people["novak"], world.people["ito"]

    def manifest(who, records: list[str]) -> StudyManifest:
        built = StudyManifest.build(study, records, who.name, who.address, 1795000000)
        return built.signed_by(who.sign)

    before = records(world)
    with GatewayClient(gateway.url, novak) as as_novak:
        with pytest.raises(AccessDenied, match="not the owner"):
            as_novak.register_study(manifest(novak, ito_records))
        unknown = "bafkreiatnu3apwqvxcphs7y3ylr2e36e7yndlumxwla75qc5nx4tzfgeli"
        with pytest.raises(NotFound, match="not held"):
            as_novak.register_study(manifest(novak, [unknown]))
    with GatewayClient(gateway.url, ito) as as_ito:
        with pytest.raises(AccessDenied, match="uploader"):
            as_ito.register_study(manifest(novak, ito_records))  # novak's, sent by ito
        body = manifest(ito, ito_records).to_json().encode()  # indented: not canonical
        headers = {**as_ito.signed("study", cid_of(io.BytesIO(body)), body),
                   "Content-Type": "application/json"}  # fmt: skip
        answer = httpx.post(f"{gateway.url}/v1/studies", content=body, headers=headers)
        assert answer.status_code == 400
        assert "canonical" in answer.json()["reason"]
    refused = cid_of(io.BytesIO(manifest(novak, ito_records).to_bytes()))
    assert httpx.get(f"{gateway.url}/v1/studies/{refused}").status_code == 404  # not recorded
    assert records(world) == before
