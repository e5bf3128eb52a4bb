"""The console's audit search is the gateway's signed audit query (``POST /v1/audit``), against
a real ``scanseal console`` and ``scanseal serve``: filters across records (actor, patient,
study, record, action, outcome, days), the gateway's pages followed by their cursor, exports of
the same query, and a refused query shown as the gateway's refusal, not a 500."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from console_harness import CT, ConsoleProcess
from gateway_harness import GatewayProcess
from scanseal.client import GatewayClient

CT_STUDY = str(pydicom.dcmread(CT).StudyInstanceUID)
CT_PATIENT = str(pydicom.dcmread(CT).PatientID)


@pytest.fixture(scope="module")
def session(console: ConsoleProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.base, follow_redirects=False, timeout=120) as client:
        assert client.get(console.url).status_code == 303
        yield client


def _records_shown(page: str) -> list[str]:
    results = page.split('id="results"')[1]
    return re.findall(r'<a class="record-link" href="/records/(\w+)">', results)


def _export(session: httpx.Client, **params: str) -> list[dict[str, object]]:
    answer = session.get("/audit/export", params={**params, "format": "json"})
    assert answer.status_code == 200, answer.text
    events: list[dict[str, object]] = json.loads(answer.text)
    return events


def test_a_search_without_a_record_spans_every_record_i_may_see(
    gateway: GatewayProcess, session: httpx.Client, record: str, flagged: str
) -> None:
    """One query, two records: filtering one record's trail in the console could not do it."""
    page = session.get("/audit", params={"action": "stored"})
    assert page.status_code == 200, page.text
    assert set(_records_shown(page.text)) >= {record, flagged}
    with GatewayClient(gateway.url, gateway.world.people["lee"]) as lee:
        expected = list(lee.audit_query(action="stored"))
    assert len(_records_shown(page.text)) == len(expected)
    assert {e["record"] for e in _export(session, action="stored")} == {
        e["record"] for e in expected
    }


def test_actor_outcome_and_days_are_the_gateways_filters(
    gateway: GatewayProcess, session: httpx.Client, record: str
) -> None:
    mallory = gateway.world.people["mallory"].address
    denied = _export(session, actor=mallory, outcome="denied")
    assert denied
    assert {(e["record"], e["outcome"], e["subject"]) for e in denied} == {
        (record, "denied", mallory)
    }
    page = session.get("/audit", params={"actor": mallory, "outcome": "denied"}).text
    shown = re.findall(r'<tr class="(\w+)">', page.split('id="trail"')[1])
    assert shown == ["denied"] * len(denied)
    everything = _export(session, record=record)
    days = sorted(str(e["time"])[:10] for e in everything)
    assert len(_export(session, record=record, since=days[0], until=days[-1])) == len(everything)
    assert _export(session, record=record, since="2999-01-01") == []
    assert _export(session, record=record, until="2000-01-01") == []
    assert session.get("/audit", params={"since": "last week"}).status_code == 400
    assert session.get("/audit", params={"action": "deleted"}).status_code == 400


def test_study_and_patient_come_from_my_catalogue(
    session: httpx.Client, record: str, flagged: str
) -> None:
    by_study = _export(session, study=CT_STUDY)
    by_patient = _export(session, patient=CT_PATIENT)
    assert by_study
    assert {e["record"] for e in by_study} == {record}
    assert by_patient == by_study
    assert {e["record"] for e in _export(session, patient="Test^Patient")} == {flagged}
    both = session.get("/audit", params={"study": CT_STUDY, "record": flagged})
    assert both.status_code == 404  # no record is both: the query is not sent unlimited
    assert "no record shared with you matches the record, study given" in both.text
    assert 'id="audit-refused"' in both.text


def test_the_gateways_pages_are_followed_by_their_cursor(
    session: httpx.Client, record: str
) -> None:
    everything = [str(e["evidence"]) for e in _export(session, record=record)]
    assert len(everything) > 3
    seen: list[str] = []
    url: str | None = f"/audit?record={record}&limit=2"
    pages = 0
    while url is not None:
        page = session.get(html.unescape(url))
        assert page.status_code == 200, page.text
        body = page.text.split('id="trail"')[1]
        seen += re.findall(r'<code class="evidence">([^<]*)</code>', body)
        found = re.search(r'<a id="audit-next" href="([^"]+)"', page.text)
        url = found.group(1) if found else None
        pages += 1
    assert pages == (len(everything) + 1) // 2
    assert [html.unescape(s) for s in seen] == everything


def test_a_refused_query_shows_the_gateways_refusal_and_is_logged(
    gateway: GatewayProcess, session: httpx.Client, tmp_path: Path
) -> None:
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        other = str(ito.send(CT, [people["novak"].card], tmp_path)["manifest_cid"])
    page = session.get("/audit", params={"record": other})
    assert page.status_code == 403
    assert "Traceback" not in page.text
    refusal = re.search(r'<p class="warn" id="audit-refused">([^<]*)</p>', page.text)
    assert refusal is not None
    assert "The gateway refused the query:" in refusal.group(1)
    assert "may not read the audit trail of " + other in refusal.group(1)
    export = session.get("/audit/export", params={"record": other, "format": "csv"})
    assert export.status_code == 403
    assert "may not read the audit trail" in export.text
    with GatewayClient(gateway.url, people["ito"]) as ito:
        trail = ito.audit(other)
    lee = people["lee"].address
    logged = [e for e in trail if e.get("subject") == lee and e.get("access_type") == "audit"]
    assert len(logged) >= 2
    assert {e["outcome"] for e in logged} == {"denied"}


def test_exports_carry_each_events_record(session: httpx.Client, record: str) -> None:
    fhir = session.get("/audit/export", params={"study": CT_STUDY, "format": "fhir"})
    bundle = json.loads(fhir.text)
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == len(_export(session, study=CT_STUDY))
    assert record in json.dumps(bundle["entry"][0]["resource"]["entity"])
    dicom = session.get("/audit/export", params={"study": CT_STUDY, "format": "dicom"})
    assert dicom.text.count("<AuditMessage>") == len(bundle["entry"])
    assert record in dicom.text
    csv = session.get("/audit/export", params={"study": CT_STUDY, "format": "csv"}).text
    assert csv.splitlines()[0].startswith("record,time,")
    assert all(line.startswith(record + ",") for line in csv.splitlines()[1:])
