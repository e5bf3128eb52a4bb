"""Storage configuration: TOML table, env vars, refusal of typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanseal.errors import InvalidInput
from scanseal.storage import ReplicatedStore, StorageConfig, load_config, open_store


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_are_the_embedded_store(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    config = load_config(env={})
    assert config == StorageConfig()
    assert config.block_root() == tmp_path / "blocks"


def test_toml_then_env_precedence(tmp_path):
    path = _write(
        tmp_path / "scanseal.toml",
        '[storage]\nbackend = "kubo"\nnodes = ["http://127.0.0.1:1", "http://127.0.0.1:2"]\n'
        "min_replicas = 2\ntimeout = 5\nretries = 1\n",
    )
    config = load_config(path, env={"SCANSEAL_STORAGE_TIMEOUT": "2.5"})
    assert config.backend == "kubo"
    assert config.nodes == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    assert (config.timeout, config.retries, config.min_replicas) == (2.5, 1, 2)


def test_home_file_and_env_path_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    _write(tmp_path / "scanseal.toml", "[storage]\nmin_replicas = 3\n")
    assert load_config(env={}).min_replicas == 3
    other = _write(tmp_path / "other.toml", "[storage]\nmin_replicas = 1\n")
    assert load_config(env={"SCANSEAL_CONFIG": str(other)}).min_replicas == 1


def test_env_nodes_are_a_comma_list(tmp_path):
    env = {"SCANSEAL_STORAGE_BACKEND": "kubo", "SCANSEAL_STORAGE_NODES": "http://a:1, http://b:2"}
    assert load_config(env=env).nodes == ("http://a:1", "http://b:2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage]\nmin_replica = 2\n", "unknown storage setting"),
        ('[storage]\nbackend = "s3"\n', "backend must be one of"),
        ('[storage]\ntimeout = "soon"\n', "bad value for 'timeout'"),
        ("[storage]\nretries = -1\n", "bad value for 'retries'"),
        (f"[storage]\ntimeout = {10**400}\n", "bad value for 'timeout'"),  # too large a float
        ("[storage\n", "cannot read config"),
    ],
)
def test_bad_files_are_refused_clearly(tmp_path, text, message):
    with pytest.raises(InvalidInput, match=message):
        load_config(_write(tmp_path / "bad.toml", text), env={})


def test_explicit_missing_file_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_kubo_backend_checks_replicas_against_nodes(tmp_path):
    config = StorageConfig(backend="kubo", root=tmp_path, nodes=("http://127.0.0.1:9",))
    with pytest.raises(InvalidInput, match="min_replicas is 2 but 1 node"):
        open_store(config)
    single = StorageConfig(
        backend="kubo", root=tmp_path, nodes=("http://127.0.0.1:9",), min_replicas=1
    )
    with open_store(single) as store:
        assert isinstance(store, ReplicatedStore)
