"""`scanseal config check`: every problem of a configuration on its own line, exit 2; `serve`
runs the same checks before it asks for a passphrase or opens anything."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import scanseal._cli.gateway
from cli_support import FAST, PASSPHRASE, one_error_line
from scanseal.crypto.identity import Identity, Keystore
from scanseal.service.tls import make_certs


def _errors(result) -> list[str]:
    lines = result.err.splitlines()
    assert "Traceback" not in result.err + result.out
    assert all(line.startswith("error: ") for line in lines), result.err
    return [line.removeprefix("error: ") for line in lines]


def _refused(run, config: Path) -> list[str]:
    """`config check` of ``config``: exit 2, and its problems, one per line."""
    result = run("config", "check", "--config", str(config))
    assert result.code == 2, result.err
    assert result.out == ""
    return _errors(result)


def _no_identity(table: str, name: str, home: Path) -> str:
    return (
        f"{table}: identity {name!r} is not in the keystore {home}/keys "
        f"(create it with 'scanseal keys new {name}')"
    )


@pytest.fixture
def site(home: Path) -> Path:
    """A department's configuration directory: scanseal.toml, its cards beside it, the gateway
    identity in the keystore; every path in the file relative to the file."""
    Keystore(home / "keys", scrypt_n=FAST).create("gw", PASSPHRASE)
    site = home / "site"
    (site / "members").mkdir(parents=True)
    (site / "members" / "lee.card.json").write_text(Identity.generate("lee").card.to_json())
    (site / "radiology.card.json").write_text(Identity.generate("rad").card.to_json())
    return site


def _write(site: Path, gateway: str = "", dicom: str = "", port: int = 0) -> Path:
    config = site / "scanseal.toml"
    config.write_text(
        f'[gateway]\nidentity = "gw"\nport = {port}\nmembers = "members"\n{gateway}\n'
        f'[dicom]\nenabled = true\nport = 0\nrecipients = ["radiology.card.json"]\n{dicom}\n'
    )
    return config


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_a_ready_configuration_is_ok_from_any_working_directory(
    site: Path, run, monkeypatch, tmp_path
) -> None:
    config = _write(site)
    monkeypatch.chdir(tmp_path)  # relative paths are the file's, not the working directory's
    result = run("config", "check", "--config", str(config))
    assert result.code == 0, result.err
    assert result.err == ""
    (ok,) = result.out.splitlines()  # nothing left unchecked: serve enrols every card named
    assert ok.startswith(f"ok: {config}: gateway 'gw' on http://127.0.0.1 (any free port)")
    assert "1 member card(s)" in ok
    assert "DICOM SCP SCANSEAL on 127.0.0.1:(any free port) for 1 card(s)" in ok


def test_serve_enrols_the_dicom_cards_outside_the_members_directory(site: Path) -> None:
    """A [dicom] recipient whose card is not in the members directory is registered as the
    gateway opens, so its route's C-STOREs are not refused for an unknown identity."""
    from scanseal.crypto.identity import IdentityCard
    from scanseal.service.server import open_gateway

    config = _write(site)
    radiology = IdentityCard.load(site / "radiology.card.json")
    lee = IdentityCard.load(site / "members" / "lee.card.json")
    gateway = open_gateway(config, PASSPHRASE)
    try:
        assert gateway.ledger.identity_of(radiology.address) == radiology.card_hash
        assert gateway.ledger.identity_of(lee.address) == lee.card_hash
    finally:
        gateway.close()


def test_cards_the_gateway_enrolls_itself_need_no_ledger(site: Path, run) -> None:
    config = _write(site, dicom='[dicom.routes]\nCT_2 = ["members/lee.card.json"]')
    (site / "radiology.card.json").unlink()
    config.write_text(config.read_text().replace("radiology.card.json", "members/lee.card.json"))
    result = run("config", "check", "--config", str(config))
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 1  # an ok line, nothing left unchecked


def test_every_problem_is_one_line_and_exit_2(site: Path, run, home: Path, taken_port) -> None:
    (site / "members" / "broken.json").write_text("{not json")
    (site / "state").write_text("a file where a directory should be")
    config = _write(
        site,
        gateway='state_dir = "state"\ntls_cert = "none.pem"\ntls_key = "none.key"',
        port=taken_port,
        dicom='[dicom.routes]\nCT_2 = ["cardiology.card.json"]',
    )
    (site / "radiology.card.json").unlink()
    errors = _refused(run, config)
    assert errors[0].startswith(
        f"gateway: members: {site}/members/broken.json: identity card is not valid JSON"
    )
    assert errors[1:] == [
        f"gateway: tls_cert {site}/none.pem is not a file",
        f"gateway: state_dir {site}/state is not a directory",
        f"dicom: recipients: no identity card at {site}/radiology.card.json",
        f"dicom: routes.CT_2: no identity card at {site}/cardiology.card.json",
        f"cannot listen on 127.0.0.1:{taken_port} (HTTP): the port is in use "
        "(is a gateway running already?)",
    ]


def test_a_missing_members_directory_and_identity_are_named(site: Path, run, home: Path) -> None:
    config = _write(site, gateway='members = "cards"')
    config.write_text(config.read_text().replace('members = "members"\n', ""))
    (home / "keys" / "gw.json").unlink()
    assert _refused(run, config) == [
        _no_identity("gateway", "gw", home),
        f"gateway: members {site}/cards is not a directory",
    ]


def test_tls_files_must_be_a_pair(site: Path, run, home: Path) -> None:
    one, other = make_certs(home / "one"), make_certs(home / "other")
    config = _write(site, gateway=f'tls_cert = "{one.cert}"\ntls_key = "{other.key}"')
    (line,) = _refused(run, config)
    assert line.startswith(f"gateway: tls_cert {one.cert} and tls_key {other.key} are not a usable")


def test_a_misspelled_table_is_still_one_line(site: Path, run) -> None:
    (site / "scanseal.toml").write_text("[gatway]\n")
    result = run("config", "check", "--config", str(site / "scanseal.toml"))
    assert result.code == 2
    assert one_error_line(result) == f"error: {site}/scanseal.toml: unknown table [gatway]"


def test_serve_runs_the_same_check_before_the_passphrase(
    site: Path, run, home: Path, monkeypatch
) -> None:
    def never(name: str, *, confirm: bool = False) -> str:
        raise AssertionError(f"serve asked for the passphrase of {name}")

    monkeypatch.setattr(scanseal._cli.gateway, "read_passphrase", never)
    (home / "keys" / "gw.json").unlink()  # an empty home: no such identity
    config = _write(site)
    (site / "radiology.card.json").unlink()
    result = run("serve", "--config", str(config))
    assert result.code == 2, result.err
    assert _errors(result) == [
        _no_identity("gateway", "gw", home),
        f"dicom: recipients: no identity card at {site}/radiology.card.json",
    ]
    assert not (home / "chain").exists()  # nothing opened
    assert not (home / "gateway").exists()


def test_serve_exits_5_when_its_one_problem_is_a_port_in_use(site: Path, run, taken_port) -> None:
    config = _write(site, port=taken_port)
    result = run("serve", "--config", str(config))
    assert result.code == 5, result.err
    assert f"127.0.0.1:{taken_port} (HTTP): the port is in use" in one_error_line(result)


def test_port_zero_still_needs_a_host_it_can_bind(site: Path, run) -> None:
    config = _write(site, gateway='host = "192.0.2.1"')  # TEST-NET-1: not an address of ours
    (line,) = _refused(run, config)
    assert line.startswith("cannot listen on 192.0.2.1:0 (HTTP): ")


def test_an_agents_file_is_checked_for_what_the_agent_needs(home: Path, run) -> None:
    config = home / "agent.toml"
    config.write_text(
        '[forward]\ngateway = "https://gw.example:8470"\nidentity = "eve"\n'
        'destination = "PACS@pacs.example:104"\nca = "ca.pem"\n'
    )
    assert _refused(run, config) == [
        _no_identity("forward", "eve", home),
        f"forward: ca {home}/ca.pem is not a file",
    ]
    Keystore(home / "keys", scrypt_n=FAST).create("eve", PASSPHRASE)
    (home / "ca.pem").write_text("a CA certificate")
    result = run("config", "check", "--config", str(config))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"ok: {config}: agent forwarding as 'eve' to PACS@pacs.example:104",
        "not checked: the gateway https://gw.example:8470 and the PACS PACS@pacs.example:104",
    ]
