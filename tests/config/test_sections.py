"""Every package's section is built from the one resolved file, with the keys TABLES lists."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from scanseal.audit import AuditConfig
from scanseal.config import CONFIG_ENV, TABLES
from scanseal.dicom.agent import ForwardConfig
from scanseal.dicom.config import DicomConfig
from scanseal.errors import InvalidInput
from scanseal.ledger import LedgerConfig
from scanseal.service.config import GatewayConfig
from scanseal.storage import StorageConfig, load_config

SECTIONS: dict[str, type] = {
    "storage": StorageConfig,
    "ledger": LedgerConfig,
    "gateway": GatewayConfig,
    "dicom": DicomConfig,
    "forward": ForwardConfig,
    "audit": AuditConfig,
}
ENVIRONMENT_ONLY = {"funder_key"}  # LedgerConfig: never in a file


def test_tables_list_exactly_the_fields_of_each_section() -> None:
    assert set(TABLES) == set(SECTIONS)
    for name, section in SECTIONS.items():
        fields = {field.name for field in dataclasses.fields(section)} - ENVIRONMENT_ONLY
        assert set(TABLES[name]) == fields, name


def test_every_section_honours_scanseal_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the resolver only storage read $SCANSEAL_CONFIG; the others read the home file."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "scanseal.toml").write_text("[gateway]\nport = 1111\n", "utf-8")
    other = tmp_path / "elsewhere" / "other.toml"
    other.parent.mkdir()
    other.write_text(
        '[storage]\nmin_replicas = 1\n[ledger]\nbackend = "jsonrpc"\nurl = "http://127.0.0.1:9"\n'
        '[gateway]\nport = 2222\n[dicom]\nport = 3333\nrecipients = ["a.card.json"]\n'
        '[forward]\ngateway = "http://gw:8470"\nidentity = "bob"\ndestination = "P@h:1"\n'
        'state_dir = "fwd"\n',
        "utf-8",
    )
    monkeypatch.setenv("SCANSEAL_HOME", str(home))
    monkeypatch.setenv(CONFIG_ENV, str(other))
    env = {CONFIG_ENV: str(other)}
    assert load_config(env=env).min_replicas == 1
    assert LedgerConfig.load(env=env).url == "http://127.0.0.1:9"
    assert GatewayConfig.load(env=env).port == 2222
    dicom = DicomConfig.load()
    assert (dicom.port, dicom.recipients) == (3333, (other.parent / "a.card.json",))
    forward = ForwardConfig.load()
    assert forward is not None
    assert forward.state_dir == other.parent / "fwd"  # [forward] paths: relative to the file
    assert GatewayConfig.load(home / "scanseal.toml", env=env).port == 1111  # --config wins


def test_relative_paths_in_the_file_are_relative_to_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "scanseal.toml"
    path.write_text(
        '[storage]\nroot = "blocks"\n[ledger]\nstate_dir = "chain"\n'
        '[gateway]\nmembers = "cards"\nstate_dir = "/srv/gw"\n'
        'tls_cert = "tls/server.pem"\ntls_key = "tls/server.key"\n',
        "utf-8",
    )
    assert load_config(path, env={}).root == tmp_path / "blocks"
    assert LedgerConfig.load(path, env={}).state_dir == tmp_path / "chain"
    gateway = GatewayConfig.load(path, env={})
    assert gateway.members == tmp_path / "cards"
    assert gateway.state_dir == Path("/srv/gw")  # an absolute path stays as it is
    assert gateway.tls_cert == tmp_path / "tls/server.pem"
    assert gateway.tls_key == tmp_path / "tls/server.key"


def test_relative_paths_from_the_environment_stay_relative_to_the_working_directory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scanseal.toml"
    path.write_text('[gateway]\nmembers = "cards"\n', "utf-8")
    env = {"SCANSEAL_GATEWAY_MEMBERS": "here", "SCANSEAL_LEDGER_STATE_DIR": "chain"}
    assert GatewayConfig.load(path, env=env).members == Path("here")
    assert LedgerConfig.load(path, env=env).state_dir == Path("chain")
    assert load_config(path, env={"SCANSEAL_STORAGE_ROOT": "blocks"}).root == Path("blocks")


def test_a_typo_in_another_table_fails_every_section(tmp_path: Path) -> None:
    path = tmp_path / "scanseal.toml"
    path.write_text('[gateway]\nidentity = "gw"\n[dicom]\nae_titel = "X"\n', "utf-8")
    loaders = (
        lambda: load_config(path, env={}),
        lambda: LedgerConfig.load(path, env={}),
        lambda: GatewayConfig.load(path, env={}),
        lambda: DicomConfig.load(path),
        lambda: ForwardConfig.load(path),
    )
    for load in loaders:
        with pytest.raises(InvalidInput, match=f"{path}: unknown dicom setting 'ae_titel'"):
            load()


def test_gateway_auditors_are_checksummed_from_file_and_environment(tmp_path: Path) -> None:
    address = "0x" + "ab" * 20
    path = tmp_path / "scanseal.toml"
    path.write_text(f'[gateway]\nauditors = ["{address}"]\n', "utf-8")
    checksummed = GatewayConfig.load(path, env={}).auditors
    assert [a.lower() for a in checksummed] == [address]
    assert checksummed[0] != address
    env = {"SCANSEAL_GATEWAY_AUDITORS": f"{address}, {address}"}
    assert GatewayConfig.load(path, env=env).auditors == checksummed * 2
    with pytest.raises(InvalidInput, match="auditors"):
        GatewayConfig.load(path, env={"SCANSEAL_GATEWAY_AUDITORS": "0x12"})


def test_gateway_auditors_may_be_card_names(tmp_path: Path) -> None:
    address = to_checksum_address("0x" + "ab" * 20)
    path = tmp_path / "scanseal.toml"
    path.write_text(f'[gateway]\nauditors = ["dr-kim", "{address}"]\n', "utf-8")
    config = GatewayConfig.load(path, env={})
    assert config.auditors == ("dr-kim", address)
    other = to_checksum_address("0x" + "cd" * 20)
    assert config.is_auditor(other, {other: "dr-kim"})
    assert config.is_auditor(address, {})
    assert not config.is_auditor(other, {other: "dr-lee"})
    with pytest.raises(InvalidInput, match="auditors"):
        GatewayConfig.load(path, env={"SCANSEAL_GATEWAY_AUDITORS": "Dr Kim"})
