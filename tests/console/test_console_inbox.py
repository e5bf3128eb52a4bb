"""The console's inbox lists studies (the user's catalogue, as ``scanseal inbox``), each
expanding to its instance records; records of no study, and records that cannot be read, are
still listed. Against a real ``scanseal console`` and ``scanseal serve``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from console_harness import CT, ConsoleProcess
from gateway_harness import GatewayProcess
from scanseal.client import GatewayClient
from scanseal.console._app import _templates
from scanseal.console._inbox import Inbox, Loose
from scanseal.transfer.study_manifest import StudyManifest


@pytest.fixture(scope="module")
def shared(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """ito sends lee a study of two CT instances and a PNG; novak grants lee a record and
    revokes the grant before lee's inbox ever read it (the gateway stops announcing it)."""
    people, scratch = gateway.world.people, tmp_path_factory.mktemp("inbox")
    study = generate_uid()
    instances = []
    for number in (1, 2):
        dataset = pydicom.dcmread(CT)
        dataset.StudyInstanceUID, dataset.SOPInstanceUID = study, generate_uid()
        dataset.PatientName, dataset.PatientID = "Inbox^Patient", "INBOX-7"
        dataset.StudyDate, dataset.StudyTime = "20261130", "101500"
        path = scratch / f"ct-{number}.dcm"
        dataset.save_as(path)
        instances.append(path)
    png = scratch / "photo.png"
    Image.fromarray((np.arange(48 * 48).reshape(48, 48) % 200).astype(np.uint8)).save(png)
    with GatewayClient(gateway.url, people["ito"]) as ito:
        records = [str(ito.send(p, [people["lee"].card], scratch)["manifest_cid"])
                   for p in instances]  # fmt: skip
        picture = str(ito.send(png, [people["lee"].card], scratch)["manifest_cid"])
    with GatewayClient(gateway.url, people["novak"]) as novak:
        revoked = str(novak.send(CT, [people["novak"].card], scratch)["manifest_cid"])
        novak.grant(revoked, people["lee"].card)
        novak.revoke(revoked, people["lee"].address)
    return {"study": study, "records": records, "png": picture, "revoked": revoked}


@pytest.fixture(scope="module")
def session(shared: dict[str, object], console: ConsoleProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.base, timeout=120) as client:
        assert client.get(console.url, follow_redirects=False).status_code == 303
        yield client


@pytest.fixture(scope="module")
def page(session: httpx.Client) -> str:
    answer = session.get("/")
    assert answer.status_code == 200, answer.text
    return answer.text


def _study(page: str, uid: str) -> str:
    found = re.search(
        rf'<details class="study[^"]*" data-study="{re.escape(uid)}">(.*?)</details>', page, re.S
    )
    assert found, page
    return found.group(1)


def test_a_study_is_one_row_that_expands_to_its_instances(
    page: str, shared: dict[str, object]
) -> None:
    block = _study(page, str(shared["study"]))
    summary = block.split("</summary>")[0]
    for text in ("Inbox^Patient", "INBOX-7", "CT", "ito", "2 instances", "not flagged"):
        assert text in summary, summary
    assert "2026-11-30" in summary or "20261130" in summary
    records = re.findall(r'<tr class="" data-record="(\w+)">', block)
    assert sorted(records) == sorted(shared["records"])  # type: ignore[arg-type]
    assert f'href="/audit?study={shared["study"]}"' in block


def test_a_study_i_registered_shows_its_study_record(
    session: httpx.Client, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """The study record's CID (what grant, fetch and audit take for the whole study) is on the
    row of a study the user sent and registered, and on no study others sent."""
    lee = gateway.world.people["lee"]
    dataset = pydicom.dcmread(CT)
    dataset.StudyInstanceUID, dataset.SOPInstanceUID = generate_uid(), generate_uid()
    dataset.save_as(tmp_path / "own.dcm")
    with GatewayClient(gateway.url, lee) as client:
        record = str(client.send(tmp_path / "own.dcm", [lee.card], tmp_path)["manifest_cid"])
        manifest = StudyManifest.build(
            str(dataset.StudyInstanceUID), [record], lee.name, lee.address, int(time.time())
        ).signed_by(lee.sign)
        study_cid = client.register_study(manifest)["study_cid"]
    page = session.get("/").text
    assert f'<code class="study-record">{study_cid}</code>' in _study(
        page, str(dataset.StudyInstanceUID)
    )
    assert page.count('class="study-record"') == 1  # ito's study shows none


def test_the_earlier_studies_are_listed_too(page: str, record: str, flagged: str) -> None:
    studies = re.findall(r'data-study="([\d.]+)"', page)
    assert str(pydicom.dcmread(CT).StudyInstanceUID) in studies
    assert record in page
    assert flagged in page


def test_records_of_no_study_are_still_listed(page: str, shared: dict[str, object]) -> None:
    loose = page.split('<section id="loose">')[1]
    png = re.search(rf'<tr class="" data-record="{shared["png"]}">(.*?)</tr>', loose, re.S)
    assert png is not None
    assert "png file" in png.group(1)
    assert "ito" in png.group(1)
    assert 'data-study="' not in loose
    assert shared["revoked"] not in page  # revoked before it was read: no longer announced


def test_each_new_record_is_described_once(
    gateway: GatewayProcess, shared: dict[str, object], session: httpx.Client, page: str
) -> None:
    """The catalogue fetched each new record once to read it (a logged fetch); listing the
    inbox again fetches nothing more."""
    people = gateway.world.people
    lee = people["lee"].address

    def lee_fetches() -> int:
        with GatewayClient(gateway.url, people["ito"]) as ito:
            trail = ito.audit(str(shared["png"]))
        return sum(
            1 for e in trail if e.get("subject") == lee and e.get("access_type") == "download"
        )

    assert lee_fetches() == 1
    assert shared["png"] in session.get("/").text
    assert lee_fetches() == 1


def _render(inbox: Inbox) -> str:
    return _templates.get_template("inbox.html").render(
        inbox=inbox, names={}, me="lee", gateway="g", csrf="c", csrf_field="csrf", page="inbox"
    )


def test_an_empty_inbox_says_so() -> None:
    assert 'id="inbox-empty"' in _render(Inbox([], []))


def test_a_record_the_catalogue_could_not_read_is_listed_with_why() -> None:
    text = _render(Inbox([], [Loose("bafkreiexample", None, "the grant is not the owner's")]))
    row = re.search(r'<tr class="unread" data-record="bafkreiexample">(.*?)</tr>', text, re.S)
    assert row is not None
    assert "could not be read: the grant is not the owner&#39;s" in row.group(1)
    assert 'href="/records/bafkreiexample"' in row.group(1)
