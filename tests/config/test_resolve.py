"""scanseal.config.resolve: one file chosen once, read once, every table and key checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanseal.config import CONFIG_ENV, TABLES, config_file, resolve
from scanseal.errors import InvalidInput


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def test_precedence_is_option_then_variable_then_home(home: Path, tmp_path: Path) -> None:
    assert config_file(env={}) is None
    assert resolve(env={}).file is None
    assert resolve(env={}).table("ledger").values == {}
    in_home = _write(home / "scanseal.toml", "[ledger]\nbatch_size = 1\n")
    named = _write(tmp_path / "named.toml", "[ledger]\nbatch_size = 2\n")
    given = _write(tmp_path / "given.toml", "[ledger]\nbatch_size = 3\n")
    assert resolve(env={}).table("ledger").values == {"batch_size": 1}
    variable = {CONFIG_ENV: str(named)}
    assert resolve(env=variable).table("ledger").values == {"batch_size": 2}
    assert resolve(given, env=variable).table("ledger").values == {"batch_size": 3}
    assert resolve(env={CONFIG_ENV: ""}).file == in_home  # an empty variable is unset


def test_a_named_file_must_exist(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    for path, env in ((missing, {}), (None, {CONFIG_ENV: str(missing)})):
        with pytest.raises(InvalidInput, match=f"config file {missing} does not exist"):
            resolve(path, env=env)


def test_unknown_table_names_file_and_table(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "scanseal.toml", '[gatway]\nidentity = "gw"\n')
    with pytest.raises(InvalidInput) as refused:
        resolve(path, env={})
    assert refused.value.reason == f"{path}: unknown table [gatway]"
    _write(path, "colour = 1\n")
    with pytest.raises(InvalidInput, match="unknown setting 'colour' outside a table"):
        resolve(path, env={})
    _write(path, "[[storage]]\n")
    with pytest.raises(InvalidInput, match=r"\[storage\] must be a table"):
        resolve(path, env={})


def test_unknown_key_in_a_known_table_names_file_table_and_key(home: Path, tmp_path: Path) -> None:
    for name in TABLES:
        path = _write(tmp_path / "scanseal.toml", f"[{name}]\ncolour = 1\n")
        with pytest.raises(InvalidInput) as refused:
            resolve(path, env={})
        assert refused.value.reason == f"{path}: unknown {name} setting 'colour'"


def test_wrong_type_names_the_key(home: Path, tmp_path: Path) -> None:
    cases = {
        'port = "eighty"': "'port' in [gateway]: 'eighty'",
        "port = true": "'port' in [gateway]: True (not an integer)",
        "host = 8": "'host' in [gateway]: 8 (not a string)",
        "auditors = 3": "'auditors' in [gateway]: 3 (not a list of strings)",
        "tick_seconds = [1]": "'tick_seconds' in [gateway]: [1] (not a number)",
    }
    path = tmp_path / "scanseal.toml"
    for line, words in cases.items():
        _write(path, f"[gateway]\n{line}\n")
        with pytest.raises(InvalidInput) as refused:
            resolve(path, env={})
        assert refused.value.reason.startswith(f"{path}: bad value for ")
        assert words in refused.value.reason
    _write(path, "[dicom]\nenabled = 'maybe'\n")
    with pytest.raises(InvalidInput, match=r"'enabled' in \[dicom\]: 'maybe' \(not a boolean\)"):
        resolve(path, env={})
    _write(path, "[dicom]\nenabled = 'off'\n")  # the words the environment takes, never truthy
    assert resolve(path, env={}).table("dicom").values == {"enabled": False}
    _write(path, f"[storage]\ntimeout = {'9' * 400}\n")  # float() overflows; shown shortened
    with pytest.raises(InvalidInput) as refused:
        resolve(path, env={})
    assert "9" * 61 not in refused.value.reason


def test_keys_may_use_dashes_but_not_twice(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "scanseal.toml", "[ledger]\nbatch-seconds = 2\n")
    assert resolve(path, env={}).table("ledger").values == {"batch_seconds": 2.0}
    _write(path, "[ledger]\nbatch-seconds = 2\nbatch_seconds = 3\n")
    with pytest.raises(InvalidInput, match="sets 'batch_seconds' twice"):
        resolve(path, env={})


def test_environment_overrides_go_through_the_same_coercions(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "scanseal.toml", '[gateway]\nport = 9000\nhost = "0.0.0.0"\n')
    table = resolve(path, env={}).table("gateway")
    assert table.base_dir == tmp_path
    env = {"SCANSEAL_GATEWAY_PORT": "9001", "SCANSEAL_GATEWAY_URL": "http://x", "X": "1"}
    assert table.with_environment(env, "SCANSEAL_GATEWAY_").values == {
        "port": 9001,
        "host": "0.0.0.0",
    }
    with pytest.raises(InvalidInput, match=r"environment \(SCANSEAL_GATEWAY_\*\): bad value"):
        table.with_environment({"SCANSEAL_GATEWAY_PORT": "high"}, "SCANSEAL_GATEWAY_")
    with pytest.raises(InvalidInput, match="unknown gateway setting 'url'"):
        table.with_environment(env, "SCANSEAL_GATEWAY_", strict=True)
