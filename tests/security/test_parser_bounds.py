"""Hostile documents for every reader of outside input: bounded before parsing, one clear line.

No gateway here (tests/security/test_hostile_requests.py has one): the JSON reader, the TOML
configuration reader and each loader, CID text, the signed-request headers, the client's reading
of a gateway's answers, and `scanseal verify`/`open` on a manifest holding a lone surrogate.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_support import FAST, PASSPHRASE, Result, one_error_line, run_cli
from corpus import make_png
from gateway_harness import SRC
from scanseal._json import MAX_DEPTH, parse_object, parse_value
from scanseal._toml import read_toml
from scanseal.client import error_from_response
from scanseal.crypto.identity import Keystore
from scanseal.dicom.agent import ForwardConfig
from scanseal.dicom.config import DicomConfig
from scanseal.errors import GatewayUnavailable, IntegrityError, InvalidInput
from scanseal.ledger import LedgerConfig
from scanseal.protocol.signed import Domain, new_request, parse_request, recover_requester
from scanseal.service.config import GatewayConfig
from scanseal.storage import CID, load_config

BOMB = 100_000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deep_json_is_refused_whatever_the_recursion_limit() -> None:
    """In a child process, as the gateway runs: py-evm imported (recursion limit 100,000), the
    parse on a worker thread. Unbounded, json's C parser overflowed that thread's stack."""
    code = textwrap.dedent(
        f"""
        import sys, threading
        import eth  # py-evm, as the gateway imports it: it raises the recursion limit
        from scanseal._json import parse_value
        from scanseal.errors import InvalidInput
        assert sys.getrecursionlimit() >= {BOMB}, sys.getrecursionlimit()
        def parse():
            for doc in ("[" * {BOMB} + "]" * {BOMB}, '{{"a":' * {BOMB} + "1" + "}}" * {BOMB}):
                try:
                    parse_value(doc, "document")
                except InvalidInput as error:
                    print(error.reason)
        worker = threading.Thread(target=parse)
        worker.start()
        worker.join()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.splitlines() == [f"document nests deeper than {MAX_DEPTH} levels"] * 2


def test_depth_bound_counts_only_brackets_outside_strings() -> None:
    assert parse_value(nested(MAX_DEPTH), "doc") is not None
    with pytest.raises(InvalidInput, match="nests deeper"):
        parse_value(nested(MAX_DEPTH + 1), "doc")
    inside = json.dumps({"a": "[" * 1000 + '\\"{' * 1000, "b": ["]" * 50, "[["]})
    assert parse_object(inside, "doc")["b"][0] == "]" * 50
    # a string's "]]]" must not hide real nesting that follows it
    hidden = '["]]]]]]]]",' * 1 + nested(MAX_DEPTH + 1) + "]"
    with pytest.raises(InvalidInput, match="nests deeper"):
        parse_value(hidden, "doc")
    unterminated = '"' + "\\" * 3 + "[" * 100
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_value(unterminated, "doc")


def test_size_utf8_and_surrogates() -> None:
    with pytest.raises(InvalidInput, match="larger than 10 bytes"):
        parse_value(b'{"a":"xxxxxx"}', "doc", max_size=10)
    with pytest.raises(InvalidInput, match="larger than 10 bytes"):  # 5 characters, 14 bytes
        parse_value('"\U0001f600\U0001f600\U0001f600"', "doc", max_size=10)
    with pytest.raises(InvalidInput, match="not UTF-8"):
        parse_value(b'{"a":"\xff"}', "doc")
    with pytest.raises(InvalidInput, match="not valid JSON"):  # a BOM is not JSON
        parse_value(b"\xef\xbb\xbf{}", "doc")
    for lone in ('{"a":"\\ud800"}', '{"\\udfff":1}', '[["x\\ud83d"]]', '"\\uDC00"', '"\ud800"'):
        with pytest.raises(InvalidInput, match="lone UTF-16 surrogate"):
            parse_value(lone, "manifest")
    assert parse_value('["\\ud83d\\ude00"]', "doc") == ["\U0001f600"]


def test_deep_toml_is_refused_by_every_config_loader(tmp_path: Path) -> None:
    """tomllib recursed into a RecursionError (a traceback) before the bound existed."""
    config = tmp_path / "scanseal.toml"
    config.write_text(f"[gateway]\nx = {nested(BOMB)}\n", "utf-8")
    loaders: list[Callable[[], object]] = [
        lambda: GatewayConfig.load(config, env={}),
        lambda: LedgerConfig.load(config, env={}),
        lambda: load_config(config, env={}),
        lambda: DicomConfig.load(config),
        lambda: ForwardConfig.load(config),
    ]
    for load in loaders:
        with pytest.raises(InvalidInput, match="nests deeper than 32 levels") as refused:
            load()
        assert str(config) in refused.value.reason
    inline = tmp_path / "inline.toml"
    inline.write_text("a = " + "{b = " * 40 + "1" + "}" * 40 + "\n", "utf-8")
    with pytest.raises(InvalidInput, match="nests deeper"):
        read_toml(inline)


def test_toml_integer_too_long_to_convert_is_one_line(tmp_path: Path) -> None:
    """tomllib's int() refuses more than 4,300 digits with a bare ValueError (found by fuzzing)."""
    config = tmp_path / "scanseal.toml"
    config.write_text("[gateway]\nport = " + "9" * 7409 + "\n", "utf-8")
    with pytest.raises(InvalidInput, match="a number is too long") as refused:
        GatewayConfig.load(config, env={})
    assert str(config) in refused.value.reason


def test_toml_brackets_in_strings_and_comments_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        textwrap.dedent(
            '''\
            # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ a comment
            [gateway]
            a = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\""
            b = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\'
            c = """[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
            ]]]"""""
            d = \'\'\'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\'\'\'
            e = [[1], [2], {x = "}}}}"}]
            '''
        ),
        "utf-8",
    )
    table = read_toml(path)["gateway"]
    assert table["a"].startswith("[[")
    assert table["c"].endswith(']]]""')
    assert table["e"] == [[1], [2], {"x": "}}}}"}]
    for name, raw in [("big", b"a = 1\n" * 200_000), ("latin", b'a = "\xe9"\n')]:
        bad = tmp_path / f"{name}.toml"
        bad.write_bytes(raw)
        with pytest.raises(InvalidInput, match="cannot read config"):
            read_toml(bad)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.builds(lambda s: "b" + s, st.text("abcdefz234567"))))
def test_cid_text_is_a_cid_or_invalid_input(text: str) -> None:
    try:
        cid = CID.parse(text)
    except InvalidInput:
        return
    assert CID.parse(str(cid)) == cid


@pytest.mark.parametrize("text", ["b", "z", "B", "u", "\x00", "f", "m", "b" + "a" * 600])
def test_cid_one_letter_and_overlong_texts(text: str) -> None:
    """'b' reached an IndexError inside multiformats: a plain-text 500 at the gateway."""
    with pytest.raises(InvalidInput):
        CID.parse(text)


def _request_header() -> tuple[str, Domain]:
    account = Account.create()
    domain = Domain(1337, Account.create().address, Account.create().address)
    raw = new_request(account, domain, "fetch", "bafkrei-r").to_json()
    return base64.urlsafe_b64encode(raw).decode("ascii"), domain


def test_request_header_base64_is_strict() -> None:
    good, _domain = _request_header()
    assert parse_request(good).action == "fetch"
    body = good.rstrip("=")
    variants = [
        good + "AAAA",  # trailing data that decodes
        good.replace("-", "+").replace("_", "/") if ("-" in good or "_" in good) else good + "$",
        body,  # padding left out
        " " + good,
        good[:10] + "\n" + good[10:],
        good[:10] + "!" + good[10:],  # junk the lenient decoder skipped
        "A" * 5000,
    ]
    if good.endswith("="):  # non-zero padding bits spell the same bytes non-canonically
        last = body[-1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        variants.append(body[:-1] + alphabet[alphabet.index(last) | 1] + good[len(body) :])
    for encoded in variants:
        if encoded == good:
            continue
        with pytest.raises(InvalidInput):
            parse_request(encoded)


def test_signature_with_whitespace_is_an_integrity_error() -> None:
    encoded, domain = _request_header()
    request = parse_request(encoded)
    digits = "1b" * 65
    for signature in (
        f"0x{digits[:64]}  {digits[66:]}",
        f"0x{digits[:-2]}\t ",
        f"0x {digits[1:]}",
        "0x" + "g" * 130,
        "0X" + digits,
    ):
        assert len(signature) == 132
        with pytest.raises(IntegrityError):
            recover_requester(domain, request, signature)


def test_client_reads_a_hostile_gateway_answer_as_one_error() -> None:
    for content in (nested(BOMB).encode(), b'{"error":"\\ud800","reason":"x"}', b"\xff" * 10):
        answer = httpx.Response(500, content=content)
        assert isinstance(error_from_response(answer), GatewayUnavailable)


# --- `scanseal verify` and `open` on a manifest with a lone surrogate


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path))
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", PASSPHRASE)
    store = Keystore(tmp_path / "keys", scrypt_n=FAST)
    for name in ("sender", "lee"):
        (tmp_path / f"{name}.card.json").write_text(store.create(name, PASSPHRASE).card.to_json())
    return make_png(tmp_path / "scan.png")


@pytest.mark.parametrize("field", ["uploader.name", "recipients.0.name", "image.format"])
def test_lone_surrogate_in_manifest_is_one_line(
    sealed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    field: str,
) -> None:
    """The manifest parsed, then its canonical re-encoding raised UnicodeEncodeError."""

    def run(*args: str) -> Result:
        return run_cli(monkeypatch, capsys, *args)

    envelope = tmp_path / "scan.sseal"
    card = str(tmp_path / "lee.card.json")
    done = run("seal", str(sealed), "--to", card, "-o", str(envelope), "--as", "sender")
    assert done.code == 0, done.err
    manifest = envelope.with_name(envelope.name + ".manifest.json")
    document = json.loads(manifest.read_text("utf-8"))
    *path, last = field.split(".")
    target = document
    for key in path:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = target[last] + "\ud800"
    manifest.write_text(json.dumps(document, indent=2), "utf-8")  # ensure_ascii: "\ud800"
    assert "\\ud800" in manifest.read_text("utf-8")
    for args in (("verify", str(envelope)), ("verify", str(envelope), "--as", "lee")):
        result = run(*args)
        assert result.code == 2, result.err
        assert "lone UTF-16 surrogate" in one_error_line(result)
    out = tmp_path / "out.png"
    result = run("open", str(envelope), "-o", str(out), "--as", "lee")
    assert result.code == 2
    assert "manifest" in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == []
