"""`scanseal audit` with filters, against a real `scanseal serve` child process: the examples of
docs/AUDIT.md, who may query what (an unauthorised query is refused and logged on the ledger),
pagination, and the index's rows checked against the chain (an edited row is caught)."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cli.test_study_cli import send, study_tree
from cli_support import one_error_line
from gateway_harness import GatewayProcess, World, cli_against, make_world, served
from scanseal.client import GatewayClient

RECORD = re.compile(r"record (b[a-z2-7]+)")
STUDY_RECORD = re.compile(r"registered as study (b[a-z2-7]+)")
PATIENT = "STUDY01"  # the Patient ID of study_objects.mixed_study


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = make_world(tmp_path_factory.mktemp("auditq"), ["ito", "lee", "novak", "kim"])
    text = world.config.read_text("utf-8")
    world.config.write_text(text.replace("[gateway]\n", '[gateway]\nauditors = ["kim"]\n'))
    return world


@pytest.fixture(scope="module")
def gateway(world: World) -> Iterator[GatewayProcess]:
    yield from served(world)


@pytest.fixture
def run(world: World, gateway: GatewayProcess, monkeypatch, capsys):
    return cli_against(world, gateway, monkeypatch, capsys)


_SHARED: dict[str, object] = {}


@pytest.fixture
def shared(run, world: World, gateway: GatewayProcess, tmp_path_factory) -> dict[str, object]:
    """ito sends a two-object study to lee, lee opens both, novak is refused one (once for
    the module: the tests read the same ledger)."""
    if _SHARED:
        return _SHARED
    root = tmp_path_factory.mktemp("shared")
    study, paths = study_tree(root / "study", images=1, only=2)
    sent = send(run, world, root / "study", workdir=root / "out")
    assert sent.code == 0, sent.err
    records = sorted(set(RECORD.findall(sent.out)))
    assert len(records) == len(paths)
    (study_record,) = STUDY_RECORD.findall(sent.out)  # granted to lee: one grant for the study
    assert run("fetch", study, "-o", str(root / "lee"), "--as", "lee").code == 0
    novak = GatewayClient(gateway.url, world.people["novak"])
    with novak, pytest.raises(Exception, match="denied"):
        novak.fetch(records[0], root / "novak.dcm")
    _SHARED.update(study=study, records=records, study_record=study_record)
    return _SHARED


def _json(result) -> list[dict[str, object]]:
    assert result.code == 0, result.err
    return json.loads(result.out)


def _month_start() -> str:
    return datetime.now(UTC).strftime("%Y-%m-01")


def test_what_did_lee_open_this_month(run, world, shared):
    """docs/AUDIT.md: `scanseal audit --actor lee --action access --since 2026-12-01`."""
    events = _json(run("audit", "--actor", "lee", "--action", "access", "--since", _month_start(),
                       "--as", "lee", "--format", "json"))  # fmt: skip
    lee = world.people["lee"].address
    assert {e["record"] for e in events} == set(shared["records"])
    assert all(e["action"] == "access" and e["subject"] == lee for e in events)
    assert all(e["outcome"] == "success" and e["subject_name"] == "lee" for e in events)
    assert all(e["time"].endswith("Z") for e in events)
    table = run("audit", "--actor", "lee", "--action", "access", "--as", "lee")
    assert table.code == 0, table.err
    assert table.out.count("access") >= len(events)


def test_everything_that_happened_to_this_patient(run, world, shared):
    """docs/AUDIT.md: `scanseal audit --patient STUDY01`: resolved from lee's catalogue."""
    events = _json(run("audit", "--patient", PATIENT, "--as", "lee", "--format", "json"))
    assert {e["record"] for e in events} == set(shared["records"])
    assert {e["action"] for e in events} >= {"stored", "access"}  # the grant: on the study
    stored = [e for e in events if e["action"] == "stored"]
    assert len(stored) == len(shared["records"])
    assert all(e["actor"] == world.people["gateway"].address for e in stored)  # it registers
    fhir = run("audit", "--patient", PATIENT, "--as", "lee", "--format", "fhir")
    assert fhir.code == 0, fhir.err
    bundle = json.loads(fhir.out)
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == len(events)
    r5 = run("audit", "--patient", PATIENT, "--as", "lee", "-f", "fhir", "--fhir-release", "R5")
    assert r5.code == 0, r5.err
    from fhir.resources.bundle import Bundle  # the default models: FHIR R5

    resources = [entry.resource for entry in Bundle.model_validate_json(r5.out).entry]
    assert len(resources) == len(events)
    named = {json.dumps(r.model_dump(mode="json")["entity"]) for r in resources}
    assert all(any(record in entity for entity in named) for record in shared["records"])
    unknown = run("audit", "--patient", "NOBODY", "--as", "lee")
    assert unknown.code == 6
    one_error_line(unknown)


def test_filters_that_leave_no_record_do_not_widen_the_query(run, shared):
    """A record that is not of the study: no record is both, and the query is not sent
    with an empty list of records (which the gateway would take as no limit)."""
    other = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    both = run("audit", other, "--study", shared["study"], "--as", "lee", "--format", "json")
    assert both.code == 6
    one_error_line(both)
    assert "no record shared with you" in both.err


def test_every_denied_attempt_this_week(run, world, shared):
    """docs/AUDIT.md: the auditor's `scanseal audit --outcome denied --since 7d --format csv`."""
    result = run("audit", "--outcome", "denied", "--since", "7d", "--as", "kim", "--format", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    novak = world.people["novak"].address
    assert any(r["subject"] == novak and r["record"] == shared["records"][0] for r in rows)
    assert rows
    assert all(r["outcome"] == "denied" for r in rows)
    lee_view = _json(run("audit", "--outcome", "denied", "--as", "lee", "--format", "json"))
    assert {e["record"] for e in lee_view} == {shared["records"][0]}  # a record granted to lee


def test_a_member_sees_only_its_records_and_itself(run, world, gateway, shared, tmp_path):
    """A record sent to novak alone is none of lee's business; the auditor sees it."""
    study_tree(tmp_path / "other", images=1, only=1)
    sent = send(run, world, tmp_path / "other", workdir=tmp_path / "out", to="novak")
    assert sent.code == 0, sent.err
    (other,) = set(RECORD.findall(sent.out))
    lee = {e["record"] for e in _json(run("audit", "--since", "1d", "--as", "lee", "-f", "json"))}
    kim = {e["record"] for e in _json(run("audit", "--since", "1d", "--as", "kim", "-f", "json"))}
    novak = {e["record"] for e in _json(run("audit", "--limit", "500", "--as", "novak",
                                            "-f", "json"))}  # fmt: skip
    # None: lee's own identity registration; the study record: its grant to lee
    assert lee == {None, *shared["records"], shared["study_record"]}
    assert {other, *shared["records"]} <= kim
    assert other in novak
    assert shared["records"][0] in novak
    assert shared["records"][1] not in novak


def test_a_query_without_rights_is_refused_and_logged(run, world, gateway, shared):
    """Attack: novak asks for the trail of a record it was never granted (by record, and by
    a study it was never shared): 403, exit 4, and the refusal is on the ledger."""
    target = shared["records"][1]
    refused = run("audit", target, "--actor", "lee", "--as", "novak")
    assert refused.code == 4, refused.out
    one_error_line(refused)
    novak = GatewayClient(gateway.url, world.people["novak"])
    with novak, pytest.raises(Exception, match="may not read"):
        list(novak.audit_query(records=shared["records"]))
    trail = _json(run("audit", target, "--as", "ito", "--json", "-"))
    novak_address = world.people["novak"].address
    logged = [e for e in trail if e["access_type"] == "audit" and e["subject"] == novak_address]
    assert len(logged) >= 2
    assert all(e["outcome"] == "denied" for e in logged)


def test_pages_join_into_the_whole_answer(world, gateway, shared):
    with GatewayClient(gateway.url, world.people["kim"]) as kim:
        whole = kim.audit_page(limit=500)
        assert whole["next"] is None
        paged = list(kim.audit_query(limit=1))
        first = kim.audit_page(limit=1)
        assert first["next"] is not None
        assert len(first["events"]) == 1
    assert [e["evidence"] for e in paged] == [e["evidence"] for e in whole["events"]]
    assert len(paged) > len(shared["records"])


def test_an_edited_index_row_is_caught_and_repaired(world, gateway, shared):
    """Someone with the state directory rewrites an index row (a stored event now claims novak
    registered it): the query checks its rows against the chain, answers the chain's truth and
    says it repaired the row."""
    novak, uploader = world.people["novak"].address, world.people["gateway"].address
    db = world.home / "gateway" / "audit.sqlite3"
    assert db.stat().st_mode & 0o077 == 0  # owner only, like the other state files
    with sqlite3.connect(db) as conn:
        (ukey, body) = conn.execute(
            "SELECT ukey, body FROM events WHERE action = 'stored' LIMIT 1"
        ).fetchone()
        forged = json.loads(body)
        forged["actor"] = novak
        conn.execute("UPDATE events SET actor = ?, body = ? WHERE ukey = ?",
                     (novak, json.dumps(forged), ukey))  # fmt: skip
    with GatewayClient(gateway.url, world.people["kim"]) as kim:
        page = kim.audit_page(actor=novak, action="stored")
        assert page["repaired"] >= 1
        assert page["events"] == []  # the chain says the gateway stored it, not novak
        again = kim.audit_page(action="stored", actor=uploader)
    assert again["repaired"] == 0
    assert forged["tx_hash"] in [e["tx_hash"] for e in again["events"]]  # back as it was


def test_batched_entries_are_indexed_and_checked_against_the_log(tmp_path, monkeypatch, capsys):
    """Batched mode: a record's entries are in the operator's log, not in blocks; the index
    takes them at the gateway's own writes and checks an edited one against the log."""
    batched = make_world(tmp_path, ["ito", "lee"], mode="batched")
    process = GatewayProcess(batched).start()
    try:
        run = cli_against(batched, process, monkeypatch, capsys)
        study_tree(tmp_path / "study", images=1, only=1)
        sent = send(run, batched, tmp_path / "study", workdir=tmp_path / "out")
        assert sent.code == 0, sent.err
        (record,) = set(RECORD.findall(sent.out))
        events = _json(run("audit", record, "--action", "stored", "--as", "lee", "-f", "json"))
        assert [e["source"] for e in events] == ["batch"]
        db = batched.home / "gateway" / "audit.sqlite3"
        with sqlite3.connect(db) as conn:
            (ukey,) = conn.execute("SELECT ukey FROM events WHERE action = 'stored'").fetchone()
            assert ukey.startswith("b:")
            conn.execute("UPDATE events SET action = 'revoked' WHERE ukey = ?", (ukey,))
        with GatewayClient(process.url, batched.people["lee"]) as lee:
            page = lee.audit_page(records=[record], action="revoked")
        assert page["repaired"] == 1
        assert page["events"] == []
        before = _json(run("audit", record, "--since", "1d", "--as", "lee", "-f", "json"))
        process.stop()
        for path in db.parent.glob("audit.sqlite3*"):  # with its journals
            path.unlink()  # the index is only a cache of the ledger: rebuilt at the first query
        process.start()
        after = _json(run("audit", record, "--since", "1d", "--as", "lee", "-f", "json"))
        same = ("time", "action", "actor", "subject", "outcome", "tx_hash")
        assert [[e[k] for k in same] for e in after] == [[e[k] for k in same] for e in before]
        assert after[0]["evidence"].startswith("leaf 0/")  # anchored as the gateway stopped
        assert {e["action"] for e in after} >= {"stored", "granted"}
    finally:
        process.stop()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--since", "yesterday"), 2),
        (("--since", "2026-12-01T08:00:00"), 2),  # no zone
        (("--outcome", "maybe"), 2),
        (("--action", "download"), 2),
        (("--actor", "nobody-here"), 2),
        (("--limit", "0"), 2),
    ],
)
def test_bad_filters_are_one_line_and_exit_2(run, shared, args, code):
    result = run("audit", *args, "--as", "lee")
    assert result.code == code, result.out
    one_error_line(result)


def test_query_times_read_iso_dates_and_spans():
    from scanseal.audit import query_time

    now = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
    assert query_time("7d", now) == "2026-11-26T10:00:00Z"
    assert query_time("30m", now) == "2026-12-03T09:30:00Z"
    assert query_time("2026-12-01", now) == "2026-12-01T00:00:00Z"
    assert query_time("2026-12-01T08:00:00+01:00", now) == "2026-12-01T07:00:00Z"
    assert query_time(None, now) is None


@pytest.mark.parametrize(
    "filters",
    [
        {"until": "2026-12-01T00:00:00"},
        {"cursor": "not-a-cursor"},
        {"limit": 501},
        {"records": ["not a cid"]},
        {"records": []},
        {"colour": "blue"},
    ],
)
def test_the_gateway_refuses_a_malformed_query_with_400(world, gateway, shared, filters):
    from scanseal.errors import InvalidInput

    with GatewayClient(gateway.url, world.people["kim"]) as kim, pytest.raises(InvalidInput):
        kim.audit_page(**filters)


def test_by_study_from_the_catalogue(run, world, shared):
    events = _json(run("audit", "--study", shared["study"], "--action", "access", "--as", "lee",
                       "-f", "json"))  # fmt: skip
    assert {e["record"] for e in events} == set(shared["records"])
    lee = world.people["lee"].address
    assert {e["record"] for e in events if e["subject"] == lee} == set(shared["records"])
    study = _json(run("audit", shared["study_record"], "--as", "lee", "-f", "json"))
    granted = {(e["record"], e["subject"]) for e in study if e["action"] == "granted"}
    assert (shared["study_record"], lee) in granted  # one grant opens the whole study
    dicom = run("audit", "--study", shared["study"], "--limit", "1", "--as", "lee", "-f", "dicom")
    assert dicom.code == 0, dicom.err
    assert dicom.out.count("<AuditMessage>") == 1
    first = _json(run("audit", "--study", shared["study"], "--limit", "1", "--as", "lee", "-f",
                      "json"))  # fmt: skip
    assert f'ParticipantObjectID="{first[0]["record"]}"' in dicom.out  # its own record


def test_a_forged_query_is_refused_and_logged_as_unauthenticated(world, gateway, shared):
    """Attack: novak signs a query that claims to come from lee (who may read the record):
    403, and the ledger shows an unauthenticated audit attempt under the unverified claim."""
    import dataclasses

    import httpx

    from scanseal.protocol.signed import new_request, sign_request

    lee, novak = world.people["lee"], world.people["novak"]
    body = json.dumps({"records": [shared["records"][0]]}).encode()
    with GatewayClient(gateway.url, novak) as client:
        domain = client.domain
    claimed = dataclasses.replace(
        new_request(novak.account, domain, "audit", "query", body=body), requester=lee.address
    )
    headers = {**sign_request(novak.account, domain, claimed), "Content-Type": "application/json"}
    answer = httpx.post(f"{gateway.url}/v1/audit", content=body, headers=headers, timeout=30)
    assert answer.status_code == 403
    with GatewayClient(gateway.url, world.people["kim"]) as kim:
        logged = list(kim.audit_query(records=[shared["records"][0]], outcome="unauthenticated"))
    assert any(
        e["access_type"] == "audit" and e["subject"] == lee.address and not e["subject_verified"]
        for e in logged
    )
