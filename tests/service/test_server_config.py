"""`scanseal serve` reads its configuration once and hands each package its typed section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import scanseal.config
from scanseal.errors import InvalidInput
from scanseal.service.server import ServerConfig


def test_every_section_comes_from_one_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "scanseal.toml"
    toml.write_text(
        '[gateway]\nidentity = "gw"\nport = 8443\n'
        '[ledger]\nmode = "batched"\n'
        '[storage]\nbackend = "embedded"\n'
        '[dicom]\nenabled = true\nport = 11113\nrecipients = ["cards/lee.card.json"]\n'
    )
    reads: list[Path] = []
    real = scanseal.config.read_toml

    def counted(path: Path) -> dict[str, Any]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(scanseal.config, "read_toml", counted)
    settings = ServerConfig.load(toml, env={})
    assert reads == [toml]
    assert (settings.gateway.identity, settings.gateway.port) == ("gw", 8443)
    assert settings.ledger.mode == "batched"
    assert settings.storage.backend == "embedded"
    assert (settings.dicom.enabled, settings.dicom.port) == (True, 11113)
    assert settings.dicom.recipients == (tmp_path / "cards" / "lee.card.json",)
    assert settings.forward is None


def test_the_environment_still_overrides_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "scanseal.toml"
    toml.write_text("[gateway]\nport = 8443\n")
    settings = ServerConfig.load(toml, env={"SCANSEAL_GATEWAY_PORT": "9000"})
    assert settings.gateway.port == 9000


def test_a_misspelled_table_is_refused_by_name(tmp_path: Path) -> None:
    toml = tmp_path / "scanseal.toml"
    toml.write_text('[gatway]\nidentity = "gw"\n')
    with pytest.raises(InvalidInput, match=r"unknown table \[gatway\]"):
        ServerConfig.load(toml, env={})
