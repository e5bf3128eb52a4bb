"""[dicom] in scanseal.toml: each bad value is one InvalidInput naming its setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.dicom.config import DicomConfig
from scanseal.errors import InvalidInput, ScanSealError


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('routes = "PACS"', "routes must be a table"),  # dict() of a str: ValueError before
        ("routes = 3", "routes must be a table"),  # dict() of an int: TypeError before
        ('routes = ["a"]', "routes must be a table"),
        ('routes = { PACS = "lee.card.json" }', "recipients must be a list"),
    ],
)
def test_bad_routes_are_invalid_input(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "scanseal.toml"
    path.write_text(f"[dicom]\n{toml}\n", "utf-8")
    with pytest.raises(InvalidInput, match=message):
        DicomConfig.load(path)


def test_routes_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "scanseal.toml"
    path.write_text('[dicom]\nroutes = { PACS = ["lee.card.json"] }\n', "utf-8")
    assert DicomConfig.load(path).routes == {"PACS": (tmp_path / "lee.card.json",)}


def test_bytes_that_are_not_utf8_are_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "scanseal.toml"
    path.write_bytes(b'[dicom]\nae_title = "\xff"\n')
    with pytest.raises(InvalidInput, match="not UTF-8"):
        DicomConfig.load(path)


def test_workers_default_to_two_and_are_read(tmp_path: Path) -> None:
    assert DicomConfig().workers == 2
    config = tmp_path / "scanseal.toml"
    config.write_text("[dicom]\nworkers = 3\n", "utf-8")
    assert DicomConfig.load(config).workers == 3


@pytest.mark.parametrize("value", ["0", "65", '"many"', "1.5"])
def test_bad_worker_counts_are_invalid_input(tmp_path: Path, value: str) -> None:
    config = tmp_path / "scanseal.toml"
    config.write_text(f"[dicom]\nworkers = {value}\n", "utf-8")
    with pytest.raises(InvalidInput, match="workers"):
        DicomConfig.load(config)


def test_acknowledge_defaults_to_durable_and_the_spool_settings_are_read(tmp_path: Path) -> None:
    default = DicomConfig()
    assert default.acknowledge == "durable"
    assert (default.spool_max_instances, default.spool_max_mib) == (1000, 2048)
    config = tmp_path / "scanseal.toml"
    config.write_text(
        '[dicom]\nacknowledge = "registered"\nspool_max_instances = 5\nspool_max_mib = 1\n'
        "spool_wait_seconds = 0.5\n",
        "utf-8",
    )
    read = DicomConfig.load(config)
    assert (read.acknowledge, read.spool_max_instances, read.spool_max_mib) == ("registered", 5, 1)
    assert read.spool_wait_seconds == 0.5


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('acknowledge = "stored"', "acknowledge must be"),
        ("acknowledge = 1", "acknowledge"),
        ("spool_max_instances = 0", "spool_max_instances"),
        ("spool_max_mib = -1", "spool_max_mib"),
        ("spool_wait_seconds = -1", "spool_wait_seconds"),
        ("spool_wait_seconds = 601", "spool_wait_seconds"),
    ],
)
def test_bad_spool_settings_are_invalid_input(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "scanseal.toml"
    config.write_text(f"[dicom]\n{toml}\n", "utf-8")
    with pytest.raises(InvalidInput, match=message):
        DicomConfig.load(config)


def test_a_card_is_verified_once_per_content_and_a_replaced_one_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Keystore(tmp_path / "keys", scrypt_n=2**10)
    first, second = keys.create("first", "pw").card, keys.create("second", "pw").card
    path = tmp_path / "route.card.json"
    path.write_text(first.to_json(), "utf-8")
    config = DicomConfig(enabled=True, recipients=(path,))
    parsed = []
    from_json = IdentityCard.from_json
    monkeypatch.setattr(IdentityCard, "from_json", lambda text: parsed.append(1) or from_json(text))
    assert [c.address for c in config.cards_for("CT")] == [first.address]
    assert [c.address for c in config.cards_for("CT")] == [first.address]
    assert len(parsed) == 1
    path.write_text(second.to_json(), "utf-8")  # replaced on disk: used from the next C-STORE
    assert [c.address for c in config.cards_for("CT")] == [second.address]
    path.write_text(second.to_json().replace('"name": "second"', '"name": "forged"'), "utf-8")
    with pytest.raises(ScanSealError) as refused:
        config.cards_for("CT")
    assert str(path) in refused.value.reason
    path.unlink()
    with pytest.raises(ScanSealError, match="no identity card at"):
        config.cards_for("CT")
