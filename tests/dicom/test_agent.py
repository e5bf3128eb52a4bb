"""The auto-forward agent against a real `scanseal serve` (SCP on) and a pynetdicom PACS: each
record granted to the agent's identity arrives once, unchanged; failures are retried with
backoff and reported; the gateway's inbox lists only what the caller may read."""

from __future__ import annotations

import io
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid
from rich.console import Console
from tests.dicom.scu import push, registered, same_instance
from tests.dicom.test_scp import FILES
from tests.dicom.test_scp import gateway as gateway

import scanseal._cli.agent as agent_cli
from cli_support import run_cli
from gateway_harness import GatewayProcess, World, free_port, make_world
from scanseal.client import GatewayClient
from scanseal.dicom.agent import (
    FAILED,
    FORWARDED,
    PENDING,
    ForwardAgent,
    ForwardConfig,
    ForwardState,
    Item,
    Labels,
    Pass,
    inbox_page,
)
from scanseal.dicom.forward import Destination, forward
from scanseal.errors import IntegrityError, InvalidInput
from study_objects import mixed_study, write
from tests_detect_support import flagged_dicom

HERE = Path(__file__).parent
WARDS = {"WARD_A": "amy", "WARD_B": "bob", "WARD_C": "cho", "WARD_E": "eve", "WARD_F": "fay",
         "WARD_G": "gus", "WARD_H": "hal", "WARD_S": "sam"}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One recipient per calling AE, so each test watches an inbox of its own."""
    root = tmp_path_factory.mktemp("agent")
    port = free_port()
    cards = root / "home" / "members"
    routes = "".join(f'{ae} = ["{cards / f"{who}.card.json"}"]\n' for ae, who in WARDS.items())
    extra = (
        f'\n[dicom]\nenabled = true\nport = {port}\nrecipients = ["{cards / "ito.card.json"}"]\n'
        f"[dicom.routes]\n{routes}"
    )
    world = make_world(root, ["ito", "dan", *WARDS.values()], ["mallory"], extra=extra)
    world.dicom_port = port  # type: ignore[attr-defined]
    return world


class Pacs:
    """tests/dicom/pacs_scp.py as a child process on a fixed port, stopped by its PID."""

    def __init__(self, port: int, inbox: Path) -> None:
        inbox.mkdir(exist_ok=True)
        self.port, self.inbox = port, inbox
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "pacs_scp.py"), str(port), str(inbox)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def fresh_copies(tmp_path: Path) -> list[Path]:
    """The sample instances under new SOP Instance UIDs (the SCP indexes by UID)."""
    out = []
    for path in FILES:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        copy = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(copy, enforce_file_format=True)
        out.append(copy)
    return out


def agent_config(world: World, gateway: GatewayProcess, who: str, pacs_port: int, **extra) -> Path:
    lines = [
        "[forward]",
        f'gateway = "{gateway.url}"',
        f'identity = "{who}"',
        f'destination = "PACS@127.0.0.1:{pacs_port}"',
        f'state_dir = "{world.home / f"forward-{who}"}"',
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    path = world.home / f"agent-{who}.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def run_agent(world: World, config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scanseal", "agent", "--config", str(config), *flags]
    return subprocess.run(command, env=world.env(), capture_output=True, text=True, check=False)


def forward_once(world: World, config: Path, who: str) -> tuple[int, int, int]:
    """One pass of a new agent (as after a restart) on the state the config names."""
    settings = ForwardConfig.load(config)
    assert settings is not None
    agent = ForwardAgent(settings, world.people[who])
    try:
        done = agent.run_once()
    finally:
        agent.close()
    return done.discovered, done.forwarded, done.failed


def test_each_record_is_forwarded_once_across_restarts(gateway: GatewayProcess, tmp_path: Path):
    world = gateway.world
    sent = fresh_copies(tmp_path)
    assert push(world.dicom_port, sent, calling="WARD_A") == [0, 0]
    registered(gateway.url)  # the agent's pass reads the inbox at once
    pacs = Pacs(free_port(), tmp_path / "pacs")
    try:
        config = agent_config(world, gateway, "amy", pacs.port)
        first = run_agent(world, config, "--once")
        assert first.returncode == 0, first.stderr
        assert "2 new, 2 forwarded, 0 failed" in first.stdout
        assert first.stderr.count("forwarded to PACS@") == 2  # one log line per record
        for original in sent:
            same_instance(pacs.inbox / original.name, original)
            (pacs.inbox / original.name).unlink()
        assert forward_once(world, config, "amy") == (0, 0, 0)  # a restart: state on disk
        assert list(pacs.inbox.iterdir()) == []
        more = fresh_copies(tmp_path)[:1]
        assert push(world.dicom_port, more, calling="WARD_A") == [0]
        registered(gateway.url)  # the agent's pass reads the inbox at once
        assert forward_once(world, config, "amy") == (1, 1, 0)
        assert [p.name for p in pacs.inbox.iterdir()] == [more[0].name]
    finally:
        pacs.stop()


def test_failures_are_retried_with_backoff_and_reported(
    gateway: GatewayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    world = gateway.world
    sent = fresh_copies(tmp_path)[:1]
    assert push(world.dicom_port, sent, calling="WARD_B") == [0]
    registered(gateway.url)  # the agent's pass reads the inbox at once
    port = free_port()  # nothing listens there yet
    config = ForwardConfig.load(agent_config(world, gateway, "bob", port, retry_seconds=60))
    assert config is not None
    agent = ForwardAgent(config, world.people["bob"])
    clock = [1_000_000.0]
    try:
        done = agent.run_once(lambda: clock[0])
        assert (done.discovered, done.forwarded, done.failed) == (1, 0, 1)
        (item,) = agent.state.unfinished()
        assert (item.status, item.attempts) == (PENDING, 1)
        assert "refused or did not answer" in str(item.last_error)
        assert item.next_try == clock[0] + 60
        monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
        status = run_cli(monkeypatch, capsys, "agent", "--status", "--config",
                         str(world.home / "agent-bob.toml"))  # fmt: skip
        assert status.code == 0
        assert "1 pending" in status.out
        assert f"{item.manifest_cid}  pending  1 attempt(s)  PACS" in status.out
        clock[0] += 59  # not due yet: nothing is attempted
        assert agent.run_once(lambda: clock[0]).failed == 0
        clock[0] += 1
        assert agent.run_once(lambda: clock[0]).failed == 1  # second failure: 120 s now
        assert agent.state.item(item.manifest_cid).next_try == clock[0] + 120  # type: ignore[union-attr]
        pacs = Pacs(port, tmp_path / "pacs")
        try:
            clock[0] += 120
            done = agent.run_once(lambda: clock[0])
        finally:
            pacs.stop()
        assert (done.forwarded, done.failed) == (1, 0)
        assert agent.state.item(item.manifest_cid).status == FORWARDED  # type: ignore[union-attr]
        same_instance(pacs.inbox / sent[0].name, sent[0])
    finally:
        agent.close()


def test_a_record_that_is_no_dicom_fails_for_good(gateway: GatewayProcess, tmp_path: Path):
    world = gateway.world
    png = tmp_path / "photo.png"
    pixels = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 251).astype(np.uint8)
    Image.fromarray(pixels).save(png)
    with GatewayClient(gateway.url, world.people["ito"]) as ito:
        record = ito.send(png, [world.people["cho"].card], tmp_path)["manifest_cid"]
    config = ForwardConfig.load(agent_config(world, gateway, "cho", free_port()))
    assert config is not None
    agent = ForwardAgent(config, world.people["cho"])
    try:
        done = agent.run_once()
        assert (done.discovered, done.failed) == (1, 1)
        item = agent.state.item(record)
        assert item is not None
        assert item.status == FAILED
        assert "not a DICOM instance" in str(item.last_error)
        assert agent.run_once().failed == 0  # not retried
    finally:
        agent.close()


def test_inbox_lists_what_the_caller_may_read_and_signs_the_cursor(
    gateway: GatewayProcess, tmp_path: Path
):
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        record = ito.send(FILES[0], [people["dan"].card], tmp_path)["manifest_cid"]
        with GatewayClient(gateway.url, people["dan"]) as dan:
            listed = dan.inbox()
            assert record in [e["record"] for e in listed["records"]]
            assert dan.inbox(listed["next"])["records"] == []  # the cursor moves past it
        with GatewayClient(gateway.url, people["mallory"]) as mallory:
            assert mallory.inbox()["records"] == []
        with GatewayClient(gateway.url, people["amy"]) as amy:
            assert record not in [e["record"] for e in amy.inbox()["records"]]
            headers = amy.signed("inbox", "0")
            forged = httpx.get(f"{gateway.url}/v1/inbox?after=5", headers=headers, timeout=10)
            assert forged.status_code == 403  # the cursor is part of what was signed
            with pytest.raises(InvalidInput, match="sequence number"):
                amy.inbox(2**63)  # beyond SQLite's integers: refused, not a server error
        ito.grant(record, people["amy"].card)
        with GatewayClient(gateway.url, people["amy"]) as amy:
            assert record in [e["record"] for e in amy.inbox()["records"]]
        ito.revoke(record, people["dan"].address)
        with GatewayClient(gateway.url, people["dan"]) as dan:
            assert record not in [e["record"] for e in dan.inbox()["records"]]
            cursor = dan.inbox()["next"]  # past the hidden entry
        ito.grant(record, people["dan"].card)  # granted again: announced again
        with GatewayClient(gateway.url, people["dan"]) as dan:
            assert [e["record"] for e in dan.inbox(cursor)["records"]] == [record]


def test_a_flagged_record_is_held_by_default_and_forwarded_under_forward(
    gateway: GatewayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """An instance the tamper screen flags at the SCP's sealing warns in the gateway's log and in
    each agent's; ``flagged = "hold"`` (the default) keeps it out of the PACS, held with its
    reason in ``--status``; ``flagged = "forward"`` sends it on. The clean one goes either way."""
    world = gateway.world
    pacs = Pacs(free_port(), tmp_path / "pacs")
    try:
        for who, ward, extra in (
            ("fay", "WARD_F", {}),
            ("gus", "WARD_G", {"flagged": '"forward"'}),
        ):
            flagged = flagged_dicom(tmp_path / f"flagged-{who}.dcm")
            (clean,) = fresh_copies(tmp_path)[:1]
            assert push(world.dicom_port, [flagged, clean], calling=ward) == [0, 0]
            registered(gateway.url)  # the agent's pass reads the inbox at once
            uid = str(pydicom.dcmread(flagged, stop_before_pixels=True).SOPInstanceUID)
            config = agent_config(world, gateway, who, pacs.port, **extra)
            done = run_agent(world, config, "--once")
            assert done.returncode == 0, done.stderr
            warned = [line for line in done.stderr.splitlines() if "WARNING" in line]
            assert len(warned) == 1, done.stderr
            assert "flagged by the tamper screen at sealing (score " in warned[0]
            record = warned[0].split("record ")[1].split()[0].rstrip(":")
            scp_log = [line for line in gateway.log.read_text().splitlines() if uid in line]
            assert len(scp_log) == 1
            assert "WARNING" in scp_log[0]
            assert f"stored as record {record}, flagged by the tamper screen" in scp_log[0]
            assert clean.name in {p.name for p in pacs.inbox.iterdir()}
            if who == "fay":
                assert "2 new, 1 forwarded, 0 failed, 1 held" in done.stdout
                assert f"record {record} held, not forwarded: flagged by" in warned[0]
                assert not (pacs.inbox / f"{uid}.dcm").exists()
                monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
                status = run_cli(monkeypatch, capsys, "agent", "--status", "--config", str(config))
                assert status.code == 0
                assert "1 forwarded, 1 held" in status.out
                assert f"{record}  held  1 attempt(s)  flagged by the tamper screen" in status.out
                assert forward_once(world, config, "fay") == (0, 0, 0)  # held stays held
            else:
                assert "2 new, 2 forwarded, 0 failed" in done.stdout
                assert 'forwarding it anyway (flagged = "forward")' in warned[0]
                same_instance(pacs.inbox / f"{uid}.dcm", flagged)
    finally:
        pacs.stop()


def test_a_malformed_inbox_answer_is_an_integrity_error() -> None:
    good = {"records": [{"seq": 3, "record": "bafk"}], "next": 3, "more": False}
    assert inbox_page(good, 0) == (["bafk"], 3, False)
    for bad in ({}, {**good, "records": [{}]}, {**good, "next": "x"}, {**good, "more": "no"},
                {**good, "next": 1}):  # fmt: skip
        with pytest.raises(IntegrityError, match="malformed"):
            inbox_page(bad, 2)


def test_forward_settings_are_checked(tmp_path: Path) -> None:
    bad = {
        'gateway = "ftp://x"\nidentity = "a"\ndestination = "P@h:1"': "http",
        'gateway = "http://x"\nidentity = "a"': "destination",
        'gateway = "http://x"\nidentity = "a"\ndestination = "P@h"': "AET@HOST:PORT",
        'gateway = "http://x"\nidentity = "a"\ndestination = "P@h:1"\ncolour = 1': "colour",
        'gateway = "http://x"\nidentity = "a"\ndestination = "P@h:1"\npoll_seconds = 0': "positive",
        'gateway = "http://x"\nidentity = "a"\ndestination = "P@h:1"\nflagged = "drop"': "hold",
    }
    for body, words in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text("[forward]\n" + body + "\n", "utf-8")
        with pytest.raises(InvalidInput, match=words):
            ForwardConfig.load(path)
    config = ForwardConfig("http://x", "a", Destination.parse("P@h:1"), retry_seconds=5,
                           max_retry_seconds=60)  # fmt: skip
    assert [config.backoff(n) for n in (1, 2, 3, 4, 5, 50)] == [5, 10, 20, 40, 60, 60]


def test_the_agent_outlives_a_gateway_outage(world: World, tmp_path: Path) -> None:
    """Run mode: the gateway is down, the agent logs and keeps polling until stopped."""
    config = ForwardConfig(f"http://127.0.0.1:{free_port()}", "amy", Destination.parse("P@h:1"),
                           poll_seconds=0.1, state_dir=tmp_path / "fwd")  # fmt: skip
    agent = ForwardAgent(config, world.people["amy"])
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert agent.state.counts() == {}
    agent.close()


def test_send_deid_shares_only_the_deidentified_instance(
    gateway: GatewayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    world, people = gateway.world, gateway.world.people
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)

    def cli(*args: str):
        return run_cli(monkeypatch, capsys, *args)

    key, work = tmp_path / "deid.key", tmp_path / "work"
    assert cli("deid-key", str(key)).code == 0
    sent = cli("send", str(FILES[0]), "--to", str(world.cards["dan"]), "--as", "ito",
               "--gateway", gateway.url, "--workdir", str(work), "--deid", str(key))  # fmt: skip
    assert sent.code == 0, sent.err
    (record,) = re.findall(r"  record (b[a-z2-7]+)", sent.out)  # then the study's summary
    with GatewayClient(gateway.url, people["dan"]) as dan:
        opened = dan.fetch(record, tmp_path / "dan.dcm").path
    received, original = pydicom.dcmread(opened), pydicom.dcmread(FILES[0])
    assert received.PatientIdentityRemoved == "YES"
    assert str(original.PatientName) not in opened.read_bytes().decode("latin-1")
    (token,) = (work / "tokens").iterdir()  # kept by the sender, never uploaded
    back = tmp_path / "back.dcm"
    assert cli("reid", str(opened), "--token", str(token), "--key", str(key),
               "-o", str(back)).code == 0  # fmt: skip
    same_instance(back, FILES[0])


def test_a_second_gateway_runs_the_agent_inside_scanseal_serve(
    gateway: GatewayProcess, tmp_path: Path
):
    """Department B's own `scanseal serve` with a [forward] table holds eve's key (her keystore
    file, copied to B) and feeds B's PACS from A's inbox while it serves."""
    world = gateway.world
    b_world = make_world(tmp_path / "dept-b", [])
    keys = b_world.home / "keys"
    (keys / "eve.json").write_bytes((world.home / "keys" / "eve.json").read_bytes())
    pacs = Pacs(free_port(), tmp_path / "pacs")
    with b_world.config.open("a", encoding="utf-8") as config:
        config.write(
            f'\n[forward]\ngateway = "{gateway.url}"\nidentity = "eve"\npoll_seconds = 0.2\n'
            f'destination = "PACS@127.0.0.1:{pacs.port}"\n'
        )
    sent = fresh_copies(tmp_path)
    dept_b = GatewayProcess(b_world).start()
    try:
        assert push(world.dicom_port, sent, calling="WARD_E") == [0, 0]
        registered(gateway.url)  # the agent's pass reads the inbox at once
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(pacs.inbox.glob("*.dcm"))) < 2:
            time.sleep(0.2)
    finally:
        dept_b.stop()
        pacs.stop()
    for original in sent:
        same_instance(pacs.inbox / original.name, original)
    log = dept_b.log.read_text()
    assert "forwarding records granted to" in log
    assert log.count("forwarded to PACS@") == 2


def closed_port() -> int:
    """A port that refuses connections: bound, then closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_pacs_that_is_down_is_tried_once_per_pass_with_growing_waits(
    gateway: GatewayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """Three records, the PACS refusing: one association per pass, not one per record; the rest
    deferred (untried); the PACS left alone for 5, 10, 20, 20 s; `--status` names what the agent
    read from the record it opened; the first success forwards everything and resets the wait."""
    world = gateway.world
    sent = [*fresh_copies(tmp_path), *fresh_copies(tmp_path)[:1]]
    assert push(world.dicom_port, sent, calling="WARD_H") == [0, 0, 0]
    registered(gateway.url)  # the agent's pass reads the inbox at once
    port = closed_port()
    path = agent_config(world, gateway, "hal", port, retry_seconds=5, max_retry_seconds=20)
    first = run_agent(world, path, "--once")  # the real entry point: exit 5, one attempt
    assert first.returncode == 5, first.stderr
    assert "3 new, 0 forwarded, 1 failed, 2 deferred" in first.stdout
    assert first.stderr.count("refused or did not answer") == 1
    assert f"PACS@127.0.0.1:{port} is down (1 time(s) in a row); not tried again for 5 s" in (
        first.stderr
    )
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    status = run_cli(monkeypatch, capsys, "agent", "--status", "--config", str(path))
    assert status.code == 0
    assert "3 pending" in status.out
    (opened,) = [line for line in status.out.splitlines() if line.startswith("    study ")]
    uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sent}
    sop = opened.split("  SOP ")[1]
    assert sop in uids
    assert "  patient CompressedSamples^" in opened
    assert "study 1.3.6.1.4.1.5962.1.2." in opened or "study e+1 1.3.6.1.4.1.5962." in opened
    assert status.out.count("1 attempt(s)") == 1
    assert status.out.count("0 attempt(s)") == 2
    as_json = run_cli(monkeypatch, capsys, "agent", "--status", "--json", "--config", str(path))
    answer = json.loads(as_json.out)
    assert answer["counts"] == {"pending": 3}
    labelled = [row for row in answer["records"] if row["labels"] is not None]
    assert [row["labels"]["sop_instance_uid"] for row in labelled] == [sop]
    assert labelled[0]["labels"]["patient_id"] in {"1CT1", "4MR1"}

    config = ForwardConfig.load(path)
    assert config is not None
    agent = ForwardAgent(config, world.people["hal"])
    associations: list[float] = []
    clock = [time.time() + 10]

    def counting(*args, **kwargs):
        associations.append(clock[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr("scanseal.dicom.agent.forward", counting)
    try:
        waits = []
        for _ in range(4):
            done = agent.run_once(lambda: clock[0])
            assert (done.failed, done.deferred) == (1, 2)
            waits.append(agent.destination_retry_at - clock[0])
            clock[0] += 1  # a pass a second later: the PACS is left alone
            later = agent.run_once(lambda: clock[0])
            assert later.failed == 0
            assert later.deferred >= 1
            clock[0] = agent.destination_retry_at
        assert waits == [5, 10, 20, 20]
        assert len(associations) == 4  # one per pass that tried, none for deferred records
        pacs = Pacs(port, tmp_path / "pacs")
        try:
            clock[0] += 60  # every record due
            done = agent.run_once(lambda: clock[0])
        finally:
            pacs.stop()
        assert (done.forwarded, done.failed, done.deferred) == (3, 0, 0)
        assert agent.destination_failures == 0
        assert agent.state.counts() == {"forwarded": 3}
    finally:
        agent.close()


def test_the_status_is_a_table_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ForwardState(tmp_path / "forward.sqlite3")
    try:
        state.discovered("http://g", 1, ["bafkone", "bafktwo"], 1.0)
        state.labelled("bafkone", Labels("1.2.3", "CT [HEAD]", "DOE^JANE", "P7", "1.2.3.4"))
        state.failed("bafkone", "PACS P@h:1 refused or did not answer", 2.0, 10.0)
        screen = io.StringIO()
        monkeypatch.setattr(
            agent_cli,
            "_out",
            Console(file=screen, force_terminal=True, width=250, color_system=None),
        )
        agent_cli._print_status(state)
    finally:
        state.close()
    text = screen.getvalue()
    assert "2 pending" in text
    for words in ("SOP Instance UID", "CT [HEAD] 1.2.3", "DOE^JANE (P7)", "1.2.3.4", "refused"):
        assert words in text
    (untried,) = [line for line in text.splitlines() if "bafktwo" in line]
    assert untried.count(" - ") >= 3  # never opened: no study, patient or SOP


def test_a_state_file_from_before_the_labels_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "forward.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE cursors (gateway TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
        "CREATE TABLE items (manifest_cid TEXT PRIMARY KEY, status TEXT NOT NULL, attempts"
        " INTEGER NOT NULL, next_try REAL NOT NULL, last_error TEXT, updated REAL NOT NULL);"
        "INSERT INTO cursors VALUES ('http://g', 4);"
        "INSERT INTO items VALUES ('bafkold', 'pending', 2, 5.0, 'PACS down', 3.0);"
        "INSERT INTO items VALUES ('bafkdone', 'forwarded', 0, 1.0, NULL, 1.0);"
    )
    old.commit()
    old.close()
    for _ in range(2):  # migrated once; opening it again changes nothing
        state = ForwardState(path)
        try:
            assert state.cursor("http://g") == 4
            assert state.item("bafkold") == Item("bafkold", PENDING, 2, 5.0, "PACS down", None)
            assert state.counts() == {"pending": 1, "forwarded": 1}
        finally:
            state.close()
    state = ForwardState(path)
    try:
        assert state.discovered("http://g", 5, ["bafknew"], 6.0) == 1
        labels = Labels(sop_instance_uid="1.2.3")
        state.labelled("bafkold", labels)
        assert state.item("bafkold").labels == labels  # type: ignore[union-attr]
        assert state.item("bafknew").labels is None  # type: ignore[union-attr]
    finally:
        state.close()


def test_run_mode_sleeps_while_the_pacs_is_down(world: World, tmp_path: Path) -> None:
    """Records due while their PACS is left alone do not wake the agent: it sleeps until the
    PACS is tried again (or the next poll), not in a tight loop of passes that defer them."""
    config = ForwardConfig(f"http://127.0.0.1:{free_port()}", "amy", Destination.parse("P@h:1"),
                           poll_seconds=60, state_dir=tmp_path / "fwd")  # fmt: skip
    agent = ForwardAgent(config, world.people["amy"])
    agent.state.discovered(config.gateway, 1, ["bafkone", "bafktwo"], time.time() - 1)
    agent.destination_retry_at = time.time() + 30
    passes: list[Pass] = []
    run_once = agent.run_once
    agent.run_once = lambda *a: passes.append(run_once(*a)) or passes[-1]  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    time.sleep(1)
    stop.set()
    thread.join(10)
    agent.close()
    assert [(p.deferred, p.failed) for p in passes] == [(2, 0)]


def test_every_object_of_a_mixed_study_is_forwarded(gateway: GatewayProcess, tmp_path: Path):
    """CT images, an RT plan, SRs, a key-object selection, a presentation state and a PDF
    pushed to the SCP all reach the PACS through the agent, element for element."""
    world = gateway.world
    sent = write(mixed_study(2), tmp_path / "study")
    assert push(world.dicom_port, sent, calling="WARD_S") == [0] * len(sent)
    registered(gateway.url)  # the agent's pass reads the inbox at once
    pacs = Pacs(free_port(), tmp_path / "pacs")
    try:
        done = run_agent(world, agent_config(world, gateway, "sam", pacs.port), "--once")
        assert done.returncode == 0, done.stderr
        assert f"{len(sent)} new, {len(sent)} forwarded, 0 failed" in done.stdout
        for original in sent:
            same_instance(pacs.inbox / original.name, original)
    finally:
        pacs.stop()
