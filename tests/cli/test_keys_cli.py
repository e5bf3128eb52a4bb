"""``scanseal keys``: exit codes, one-line errors, passphrase sources, and the real entry point."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_support import FAST, PASSPHRASE, one_error_line
from scanseal._cli._common import unlock_identity
from scanseal.crypto.identity import IdentityCard, Keystore
from scanseal.errors import InvalidInput, WrongPassphrase


@pytest.fixture
def alice(home):
    """An existing identity, made cheaply; the CLI reads it like any other."""
    return Keystore(home / "keys", scrypt_n=FAST).create("alice", PASSPHRASE)


def test_new(home, run):
    result = run("keys", "new", "alice")
    assert result.code == 0, result.err
    card = Keystore(home / "keys").card("alice")
    assert card.address in result.out
    for key in card.keys.values():
        assert key.key_id.hex() in result.out
    assert (home / "keys" / "alice.json").stat().st_mode & 0o777 == 0o600


def test_new_uses_the_default_cost(home, run):
    assert run("keys", "new", "alice").code == 0
    assert json.loads((home / "keys" / "alice.json").read_text())["kdf"]["n"] == 2**15


def test_new_existing(alice, run):
    result = run("keys", "new", "alice")
    assert result.code == 2
    assert "already exists" in one_error_line(result)


def test_new_bad_name(home, run):
    result = run("keys", "new", "Alice")
    assert result.code == 2
    assert "invalid identity name" in one_error_line(result)


def test_list(alice, home, run):
    Keystore(home / "keys", scrypt_n=FAST).create("bob", PASSPHRASE)
    result = run("keys", "list")
    assert result.code == 0
    assert alice.address in result.out
    assert result.out.index("alice") < result.out.index("bob")


def test_list_empty(home, run):
    result = run("keys", "list")
    assert result.code == 0
    assert "no identities" in result.err


def test_card_to_stdout(alice, run, monkeypatch):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")  # the public card needs no passphrase
    result = run("keys", "card", "alice")
    assert result.code == 0
    assert IdentityCard.from_json(result.out) == alice.card


def test_card_to_file(alice, run, tmp_path):
    target = tmp_path / "alice.card.json"
    result = run("keys", "card", "alice", "-o", str(target))
    assert result.code == 0
    assert result.out == ""
    assert IdentityCard.load(target) == alice.card


def test_card_shows_its_fingerprint_on_stderr(alice, run, tmp_path):
    """The fingerprint is on stderr, with or without -o: stdout stays the card alone."""
    line = f"fingerprint {alice.card.fingerprint}"
    printed = run("keys", "card", "alice")
    assert printed.err.splitlines() == [line]
    assert IdentityCard.from_json(printed.out) == alice.card
    written = run("keys", "card", "alice", "-o", str(tmp_path / "card.json"))
    assert written.err.splitlines()[-1] == line
    assert alice.card.fingerprint.replace(" ", "") == alice.card.card_hash.hex()[:32]


def test_list_and_inspect_show_the_fingerprint(alice, run, tmp_path):
    assert alice.card.fingerprint in run("keys", "list").out
    card = tmp_path / "card.json"
    card.write_text(alice.card.to_json())
    assert alice.card.fingerprint in run("keys", "inspect", str(card)).out


def test_card_unknown(home, run):
    result = run("keys", "card", "carol")
    assert result.code == 6
    assert "carol" in one_error_line(result)


def test_check(alice, run):
    result = run("keys", "check", "alice")
    assert result.code == 0
    assert alice.address in result.out


def test_wrong_passphrase(alice, run, monkeypatch):
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", "not it")
    result = run("keys", "check", "alice")
    assert result.code == 4
    assert one_error_line(result) == "error: wrong passphrase for identity 'alice'"


def test_no_passphrase_and_no_terminal(alice, run, monkeypatch):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115
    result = run("keys", "check", "alice")
    assert result.code == 2
    assert "SCANSEAL_PASSPHRASE" in one_error_line(result)


def test_tampered_keystore(alice, home, run):
    path = home / "keys" / "alice.json"
    document = json.loads(path.read_text())
    ciphertext = document["cipher"]["ciphertext"]
    document["cipher"]["ciphertext"] = ("B" if ciphertext[0] == "A" else "A") + ciphertext[1:]
    path.write_text(json.dumps(document))
    result = run("keys", "check", "alice")
    assert result.code == 3
    assert "modified" in one_error_line(result)


def test_inspect(alice, run, tmp_path):
    card = tmp_path / "card.json"
    card.write_text(alice.card.to_json())
    result = run("keys", "inspect", str(card))
    assert result.code == 0
    assert alice.card.card_hash.hex()[:32] in result.out


def test_inspect_forged(alice, run, tmp_path):
    forged = json.loads(alice.card.to_json())
    forged["name"] = "mallory"
    card = tmp_path / "forged.json"
    card.write_text(json.dumps(forged))
    result = run("keys", "inspect", str(card))
    assert result.code == 3
    assert str(card) in one_error_line(result)


def test_inspect_malformed(run, tmp_path):
    card = tmp_path / "card.json"
    card.write_text("{}")
    result = run("keys", "inspect", str(card))
    assert result.code == 2
    assert "is missing" in one_error_line(result)


def test_unlock_identity_reads_the_environment(alice):
    assert unlock_identity("alice").card == alice.card


def test_unlock_identity_asks_nothing_for_an_unknown_name(home, monkeypatch):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    with pytest.raises(Exception, match="no identity named 'carol'") as caught:
        unlock_identity("carol")
    assert type(caught.value).__name__ == "NotFound"


# --- the real entry point: a separate process ------------------------------------------------


def _env(home: Path, passphrase: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCANSEAL_PASSPHRASE"}
    env["SCANSEAL_HOME"] = str(home)
    if passphrase is not None:
        env["SCANSEAL_PASSPHRASE"] = passphrase
    return env


def test_process_wrong_passphrase_exits_4_with_one_line(alice, home):
    done = subprocess.run(
        [sys.executable, "-m", "scanseal", "keys", "check", "alice"],
        env=_env(home, "not it"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4
    assert done.stderr == "error: wrong passphrase for identity 'alice'\n"
    assert done.stdout == ""


def _converse(argv: list[str], env: dict[str, str], answers: list[str]) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal, typing each answer after the next prompt."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    transcript = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                transcript += chunk
                # click writes "Prompt:" and getpass then writes " " once echo is off
                if answers and transcript.endswith(b": "):
                    os.write(leader, answers.pop(0).encode() + b"\n")
            elif process.poll() is not None:
                break
        return process.wait(timeout=10), transcript.decode(errors="replace")
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()


def test_process_prompts_on_a_terminal(home):
    argv = [sys.executable, "-m", "scanseal", "keys", "new", "carol"]
    code, transcript = _converse(argv, _env(home, None), ["typed secret", "typed secret"])
    assert code == 0, transcript
    assert "typed secret" not in transcript  # hidden input
    assert "repeat" in transcript.lower()  # asked twice for a new identity
    assert Keystore(home / "keys").load("carol", "typed secret").name == "carol"


# --- keys passwd ---------------------------------------------------------------------------


def _secret(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def test_passwd_from_files(alice, home, run, monkeypatch, tmp_path):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    old = _secret(tmp_path / "old", PASSPHRASE)
    new = _secret(tmp_path / "new", "a new passphrase")
    result = run("keys", "passwd", "alice", "--passphrase-file", str(old),
                 "--new-passphrase-file", str(new))  # fmt: skip
    assert result.code == 0, result.err
    store = Keystore(home / "keys")
    assert store.load("alice", "a new passphrase").address == alice.address
    assert store.card("alice") == alice.card  # the same identity, the same card
    with pytest.raises(WrongPassphrase):
        store.load("alice", PASSPHRASE)
    assert sorted(p.name for p in (home / "keys").iterdir()) == ["alice.json"]  # no old copy
    assert (home / "keys" / "alice.json").stat().st_mode & 0o777 == 0o600


def test_passwd_salts_afresh(alice, home, run, tmp_path):
    before = json.loads((home / "keys" / "alice.json").read_text())
    new = _secret(tmp_path / "new", PASSPHRASE)  # even the same passphrase: a new salt and nonce
    assert run("keys", "passwd", "alice", "--new-passphrase-file", str(new)).code == 0
    after = json.loads((home / "keys" / "alice.json").read_text())
    assert after["kdf"]["salt"] != before["kdf"]["salt"]
    assert after["cipher"]["nonce"] != before["cipher"]["nonce"]
    assert Keystore(home / "keys").load("alice", PASSPHRASE).address == alice.address


def test_passwd_wrong_old_passphrase_leaves_the_file(alice, home, run, monkeypatch, tmp_path):
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", "not it")
    before = (home / "keys" / "alice.json").read_bytes()
    new = _secret(tmp_path / "new", "a new passphrase")
    result = run("keys", "passwd", "alice", "--new-passphrase-file", str(new))
    assert result.code == 4
    assert one_error_line(result) == "error: wrong passphrase for identity 'alice'"
    assert (home / "keys" / "alice.json").read_bytes() == before
    assert sorted(p.name for p in (home / "keys").iterdir()) == ["alice.json"]


def test_passwd_without_a_new_passphrase_source(alice, home, run):
    before = (home / "keys" / "alice.json").read_bytes()
    result = run("keys", "passwd", "alice")  # no terminal here, no --new-passphrase-file
    assert result.code == 2
    assert "--new-passphrase-file" in one_error_line(result)
    assert (home / "keys" / "alice.json").read_bytes() == before


def test_passwd_empty_new_passphrase_file(alice, home, run, tmp_path):
    before = (home / "keys" / "alice.json").read_bytes()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = run("keys", "passwd", "alice", "--new-passphrase-file", str(empty))
    assert result.code == 2
    expected = f"error: --new-passphrase-file {empty}: the first line is empty"
    assert one_error_line(result) == expected
    assert (home / "keys" / "alice.json").read_bytes() == before


def test_passwd_unknown_identity(home, run, tmp_path):
    result = run("keys", "passwd", "nobody", "--new-passphrase-file", str(tmp_path / "x"))
    assert result.code == 6
    one_error_line(result)


def test_replace_refuses_another_account(alice, home):
    store = Keystore(home / "keys", scrypt_n=FAST)
    impostor = Keystore(home / "other", scrypt_n=FAST).create("alice", PASSPHRASE)
    before = (home / "keys" / "alice.json").read_bytes()
    with pytest.raises(InvalidInput, match="not replacing it"):
        store.replace(impostor, PASSPHRASE)
    assert (home / "keys" / "alice.json").read_bytes() == before


def test_process_passwd_prompts_old_then_new_twice(alice, home):
    argv = [sys.executable, "-m", "scanseal", "keys", "passwd", "alice"]
    answers = [PASSPHRASE, "typed new secret", "typed new secret"]
    code, transcript = _converse(argv, _env(home, None), answers)
    assert code == 0, transcript
    assert "typed new secret" not in transcript
    assert "New passphrase for alice" in transcript
    assert "repeat" in transcript.lower()
    assert Keystore(home / "keys").load("alice", "typed new secret").address == alice.address
