"""``scanseal certs DIR``: the CA and its key are kept, a second run renews the server
certificate under the same CA (a TLS handshake with the first ``ca.pem`` still verifies), and
``--new-ca`` is the only way to a new CA."""

from __future__ import annotations

import contextlib
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from cli_support import one_error_line


def _handshake(ca: Path, cert: Path, key: Path, hostname: str = "localhost") -> None:
    """A real TLS handshake: a server with ``cert``/``key``, a client trusting only ``ca``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(ca))
    left, right = socket.socketpair()
    with left, right, ThreadPoolExecutor(1) as pool:
        left.settimeout(10)
        right.settimeout(10)
        served = pool.submit(server_context.wrap_socket, left, server_side=True)
        try:
            client_context.wrap_socket(right, server_hostname=hostname).close()
        finally:
            right.close()  # the server side's handshake ends either way
            with contextlib.suppress(ssl.SSLError, OSError):
                served.result(timeout=10).close()


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_a_second_run_renews_under_the_same_ca(home, run, tmp_path):
    certs = tmp_path / "certs"
    first = run("certs", str(certs))
    assert first.code == 0, first.err
    assert "new CA" in first.out
    assert (certs / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (certs / "server.key").stat().st_mode & 0o777 == 0o600
    kept = tmp_path / "first-ca.pem"
    kept.write_bytes((certs / "ca.pem").read_bytes())
    ca_key = (certs / "ca.key").read_bytes()
    old_serial, old_key = _serial(certs / "server.pem"), (certs / "server.key").read_bytes()

    second = run("certs", str(certs), "--name", "localhost", "--name", "gw.example")
    assert second.code == 0, second.err
    assert "kept" in second.out
    assert "renewed" in second.out
    assert (certs / "ca.pem").read_bytes() == kept.read_bytes()
    assert (certs / "ca.key").read_bytes() == ca_key
    assert _serial(certs / "server.pem") != old_serial
    assert (certs / "server.key").read_bytes() != old_key
    _handshake(kept, certs / "server.pem", certs / "server.key")  # the first CA verifies it
    _handshake(kept, certs / "server.pem", certs / "server.key", "gw.example")
    assert sorted(p.name for p in certs.iterdir()) == ["ca.key", "ca.pem", "server.key",
                                                       "server.pem"]  # fmt: skip


def test_new_ca_replaces_it_and_says_so(home, run, tmp_path):
    certs = tmp_path / "certs"
    assert run("certs", str(certs)).code == 0
    old_ca = tmp_path / "old-ca.pem"
    old_ca.write_bytes((certs / "ca.pem").read_bytes())
    replaced = run("certs", str(certs), "--new-ca")
    assert replaced.code == 0, replaced.err
    assert "replaced the CA" in replaced.out
    assert "every client needs the new ca.pem" in replaced.out
    assert (certs / "ca.pem").read_bytes() != old_ca.read_bytes()
    _handshake(certs / "ca.pem", certs / "server.pem", certs / "server.key")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(old_ca, certs / "server.pem", certs / "server.key")


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def test_a_ca_without_its_key_is_not_silently_replaced(home, run, tmp_path):
    """A directory from a ScanSeal that never kept the CA key: refused, nothing written."""
    certs = tmp_path / "certs"
    assert run("certs", str(certs)).code == 0
    (certs / "ca.key").unlink()
    before = _files(certs)
    refused = run("certs", str(certs))
    assert refused.code == 2
    assert "--new-ca" in one_error_line(refused)
    assert _files(certs) == before
    assert run("certs", str(certs), "--new-ca").code == 0


def test_a_key_that_is_not_the_cas_is_refused(home, run, tmp_path):
    one, other = tmp_path / "one", tmp_path / "other"
    assert run("certs", str(one)).code == 0
    assert run("certs", str(other)).code == 0
    (one / "ca.key").write_bytes((other / "ca.key").read_bytes())
    before = _files(one)
    refused = run("certs", str(one))
    assert refused.code == 2
    assert "is not the key of" in one_error_line(refused)
    assert _files(one) == before
