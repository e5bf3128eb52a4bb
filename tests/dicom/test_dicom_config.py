"""[dicom] in scanseal.toml: each bad value is one InvalidInput naming its setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanseal.dicom.config import DicomConfig
from scanseal.errors import InvalidInput


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
