"""Attacks on the console's front door, and its pages over plain HTTP, against a real
``scanseal console`` child process talking to a real ``scanseal serve``.

The launch token opens one session once; without the session cookie nothing is served; a Host
that is not 127.0.0.1 or localhost at the console's port (DNS rebinding) is refused; a POST
without the session's CSRF token changes nothing (the ledger shows no fetch).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
import pydicom
import pytest
from PIL import Image

from console_harness import CT, ConsoleProcess
from gateway_harness import GatewayProcess
from scanseal.client import GatewayClient

PAGES = ["/", "/audit", "/verify", "/health", "/static/console.css", "/static/htmx.min.js"]


@pytest.fixture(scope="module")
def session(console: ConsoleProcess) -> Iterator[httpx.Client]:
    """The one browser: it exchanged the token for the session cookie."""
    with httpx.Client(base_url=console.base, follow_redirects=False) as client:
        answer = client.get(console.url)
        assert answer.status_code == 303, answer.text
        yield client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([\w-]+)"', page)
    assert found, page
    return found.group(1)


def _lee_fetches(gateway: GatewayProcess, record: str) -> int:
    lee = gateway.world.people["lee"]
    with GatewayClient(gateway.url, gateway.world.people["ito"]) as ito:
        trail = ito.audit(record)
    return sum(
        1 for e in trail
        if e["action"] == "access" and e.get("subject") == lee.address
        and e.get("access_type") == "download"
    )  # fmt: skip


def test_the_token_sets_a_strict_http_only_cookie_and_is_spent(
    console: ConsoleProcess, session: httpx.Client
) -> None:
    cookie = next(c for c in session.cookies.jar if c.name == "scanseal_console")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "strict"
    assert session.get("/").status_code == 200
    with httpx.Client() as thief:  # the link reused: from the history, a log, over a shoulder
        again = thief.get(console.url)
        assert again.status_code == 401
        assert "already used" in again.text
        assert thief.get(console.base + "/").status_code == 401
        assert "set-cookie" not in again.headers
    assert session.get(console.url).status_code == 401  # even by the browser that spent it


@pytest.mark.parametrize("path", PAGES)
def test_nothing_is_served_without_the_session(console: ConsoleProcess, path: str) -> None:
    with httpx.Client(base_url=console.base) as stranger:
        assert stranger.get(path).status_code == 401
        assert stranger.get(path, params={"token": "guessed"}).status_code == 401
        assert stranger.post(path).status_code == 401
    with httpx.Client(base_url=console.base, cookies={"scanseal_console": "guessed"}) as guesser:
        assert guesser.get(path).status_code == 401


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}",
             "[::1]:{port}", "0.0.0.0:{port}"],
)  # fmt: skip
def test_another_host_is_refused(console: ConsoleProcess, session: httpx.Client, host: str) -> None:
    answer = session.get("/", headers={"Host": host.format(port=console.port)})
    assert answer.status_code == 403
    assert "Shared with me" not in answer.text


def test_the_redirect_stays_on_this_origin() -> None:
    """The exchange redirects to the path it was asked for, never to another host."""
    from starlette.requests import Request

    from scanseal.console._guard import Guard, Secrets

    keys = Secrets()
    guard = Guard(lambda *_: None, keys, 8480)  # type: ignore[arg-type,return-value]
    scope = {
        "type": "http", "method": "GET", "path": "//evil.example/x", "headers": [
            (b"host", b"127.0.0.1:8480")], "query_string": f"token={keys.token}&a=1".encode(),
    }  # fmt: skip
    answer = guard._refusal(Request(scope))
    assert answer is not None
    assert answer.headers["location"] == "/evil.example/x?a=1"


def test_localhost_is_a_host_of_its_own(console: ConsoleProcess, session: httpx.Client) -> None:
    assert session.get("/", headers={"Host": f"localhost:{console.port}"}).status_code == 200


def test_every_answer_forbids_framing_caching_and_other_origins(session: httpx.Client) -> None:
    for path in PAGES:
        headers = session.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"


def test_no_websocket_is_accepted(console: ConsoleProcess) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{console.port}/", open_timeout=10).close()


def test_it_listens_on_loopback_only(console: ConsoleProcess) -> None:
    assert console.process is not None
    listening = [
        c.laddr for c in psutil.Process(console.process.pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    ]  # fmt: skip
    assert listening
    assert {address.ip for address in listening} == {"127.0.0.1"}


def test_a_post_without_the_csrf_token_changes_nothing(
    gateway: GatewayProcess, record: str, session: httpx.Client
) -> None:
    before = _lee_fetches(gateway, record)
    page = session.get(f"/records/{record}").text
    for form in ({}, {"csrf": "forged"}):
        refused = session.post(f"/records/{record}/open", data=form)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    refused = session.post(f"/records/{record}/open", headers={"X-CSRF-Token": "forged"})
    assert refused.status_code == 403
    assert _lee_fetches(gateway, record) == before
    opened = session.post(f"/records/{record}/open", data={"csrf": _csrf(page)})
    assert opened.status_code == 303
    assert _lee_fetches(gateway, record) == before + 1


def test_an_opened_record_shows_its_patient_and_heat_map(
    gateway: GatewayProcess, record: str, session: httpx.Client
) -> None:
    page = session.get(f"/records/{record}").text
    if 'id="heatmap"' not in page:
        session.post(f"/records/{record}/open", data={"csrf": _csrf(page)})
        page = session.get(f"/records/{record}").text
    csrf, before = _csrf(session.get("/verify").text), _lee_fetches(gateway, record)
    again = session.post(f"/records/{record}/open", data={"csrf": csrf})
    assert again.status_code == 303  # opened already: shown again, not fetched again
    assert _lee_fetches(gateway, record) == before
    patient = str(pydicom.dcmread(CT).PatientName)
    assert patient in page
    assert patient in session.get("/").text  # the inbox can read it now
    picture = session.get(f"/records/{record}/heatmap.png")
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size == (128, 128)


def test_the_inbox_warns_of_a_flagged_record(
    record: str, flagged: str, session: httpx.Client
) -> None:
    page = session.get("/").text
    studies = re.findall(r'<details class="study( flagged)?" data-study="([\d.]+)">(.*?)</details>',
                         page, re.S)  # fmt: skip
    by_record = {cid: (flagged_study, body) for flagged_study, _uid, body in studies
                 for cid in re.findall(r'data-record="(\w+)"', body)}  # fmt: skip
    flagged_study, flagged_body = by_record[flagged]
    clean_study, clean_body = by_record[record]
    assert flagged_study == " flagged"
    assert "⚠ 1 flagged" in flagged_body
    assert "⚠ flagged by the tamper screen at sealing" in flagged_body
    assert ">novak <code" in flagged_body
    assert clean_study == ""
    assert "not flagged" in clean_body
    assert ">ito <code" in clean_body
    assert page.index(flagged) < page.index(record)  # newest first


def test_the_record_page_checks_every_batched_proof(record: str, session: httpx.Client) -> None:
    page = session.get(f"/records/{record}").text
    proofs = re.findall(r'<td class="proof">(.*?)</td>', page, re.S)
    assert len(proofs) >= 4  # stored, granted, lee's and novak's fetches, mallory's denial
    kinds = [p if p in ("transaction", "pending") else p.split(":")[0] for p in proofs]
    assert set(kinds) <= {'<span class="ok">✔ holds', "transaction", "pending"}, proofs
    assert kinds.count('<span class="ok">✔ holds') >= 2  # the stored record and an access
    assert "H1, H3 and pixel digest match the ledger record" in page


def test_bad_record_names_are_one_line_errors(session: httpx.Client) -> None:
    bad = session.get("/records/not-a-cid")
    assert bad.status_code == 400
    assert "Traceback" not in bad.text
    absent = session.get("/records/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
    assert absent.status_code == 404
    assert session.get("/audit/export", params={"record": "x", "format": "pdf"}).status_code == 400
    assert session.get("/nowhere").status_code == 404


def test_audit_filters_and_exports(record: str, session: httpx.Client) -> None:
    page = session.get("/audit", params={"record": record}).text
    assert "<svg" in page
    assert 'class="denied"' in page
    denied = session.get("/audit", params={"record": record, "outcome": "denied"}).text
    shown = re.findall(r'<tr class="(\w+)">', denied.split('id="trail"')[1])
    assert shown
    assert set(shown) == {"denied"}
    rows = json.loads(
        session.get(
            "/audit/export", params={"record": record, "format": "json", "outcome": "denied"}
        ).text
    )
    assert rows
    assert {r["outcome"] for r in rows} == {"denied"}
    everything = json.loads(
        session.get("/audit/export", params={"record": record, "format": "json"}).text
    )
    assert {"stored", "granted", "access"} <= {r["action"] for r in everything}
    assert any(
        r.get("actor_name") == "gateway" or r.get("subject_name") == "lee" for r in everything
    )
    by_lee = json.loads(
        session.get(
            "/audit/export", params={"record": record, "format": "json", "actor": "lee"}
        ).text
    )
    assert by_lee
    assert len(by_lee) < len(everything)
    days = sorted(r["time"][:10] for r in everything)
    for since, until, count in ((days[0], days[-1], len(everything)), ("2999-01-01", "", 0),
                                ("", "2000-01-01", 0)):  # fmt: skip
        window = {"record": record, "format": "json", "since": since, "until": until}
        assert len(json.loads(session.get("/audit/export", params=window).text)) == count
    assert session.get("/audit", params={"record": record, "since": "last week"}).status_code == 400
    fhir = session.get("/audit/export", params={"record": record, "format": "fhir"})
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert json.loads(fhir.text)["resourceType"] == "Bundle"
    dicom = session.get("/audit/export", params={"record": record, "format": "dicom"})
    assert dicom.text.lstrip().startswith("<?xml") or "<AuditMessage" in dicom.text
    csv = session.get("/audit/export", params={"record": record, "format": "csv"})
    assert csv.text.splitlines()[0].startswith("record,time,action,outcome")
    assert csv.text.splitlines()[1].startswith(record + ",")
    assert "attachment" in csv.headers["content-disposition"]


def _post_file(session: httpx.Client, name: str, data: bytes) -> str:
    csrf = _csrf(session.get("/verify").text)
    answer = session.post("/verify", data={"csrf": csrf}, files={"file": (name, data)})
    assert answer.status_code == 200, answer.text
    return answer.text


def test_verify_a_file(record: str, session: httpx.Client, tmp_path: Path) -> None:
    page = _post_file(session, "ct.dcm", CT.read_bytes())
    assert "the same bytes and the same pixels" in page
    dataset = pydicom.dcmread(CT)
    dataset.PatientName = "Renamed^Patient"
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    answer = _post_file(session, "renamed.dcm", buffer.getvalue())
    assert "pixel digest only" in answer
    assert record[:14] in answer
    png = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 251).convert("L").save(
        png, format="PNG"
    )
    assert "matches no record" in _post_file(session, "other.png", png.getvalue())
    assert "not an image" in _post_file(session, "notes.txt", b"not an image at all\n")
    csrf_less = session.post("/verify", files={"file": ("ct.dcm", CT.read_bytes())})
    assert csrf_less.status_code == 403


def test_health_shows_what_the_gateway_reports(
    gateway: GatewayProcess, session: httpx.Client
) -> None:
    reported = httpx.get(f"{gateway.url}/v1/health").json()
    page = session.get("/health").text
    for key, value in reported.items():
        assert f"<dt>{key}</dt>" in page
        if not isinstance(value, dict | list):
            assert str(value) in page


def test_a_record_not_shared_shows_its_public_checks_only(
    gateway: GatewayProcess, session: httpx.Client, tmp_path: Path
) -> None:
    """A record sent to novak alone: the gateway's public checks show; its trail is refused
    (and that refusal is the gateway's, logged on its ledger), and opening it is denied."""
    people = gateway.world.people
    with GatewayClient(gateway.url, people["ito"]) as ito:
        other = str(ito.send(CT, [people["novak"].card], tmp_path)["manifest_cid"])
    page = session.get(f"/records/{other}")
    assert page.status_code == 200
    assert "H1, H3 and pixel digest match the ledger record" in page.text
    assert 'id="trail-refused"' in page.text
    assert "may not read the audit trail" in page.text
    opened = session.post(f"/records/{other}/open", data={"csrf": _csrf(page.text)})
    assert opened.status_code == 403
    assert "Traceback" not in opened.text
    with GatewayClient(gateway.url, people["ito"]) as ito:
        trail = ito.audit(other)
    lee = people["lee"].address
    refusals = [e for e in trail if e.get("subject") == lee and e["outcome"] == "denied"]
    assert {e["access_type"] for e in refusals} >= {"audit", "download"}
