"""TLS for the gateway: a private certificate authority and a server certificate signed by it.

``scanseal certs DIR`` writes ``ca.pem`` (hand it to clients: ``--ca ca.pem``) and its key
``ca.key``, and ``server.pem`` and ``server.key`` for the names and addresses given. Keys are
files of mode 0600. ECDSA P-256, SHA-256; the CA is constrained to path length 0 and the server
certificate to serverAuth. A hospital with its own PKI points ``tls_cert`` and ``tls_key`` at its
own files instead.

Run again on the same directory, it keeps the CA and renews the server certificate under it (a
new key, a new serial), so clients keep the ``ca.pem`` they have; ``new_ca`` (``--new-ca``)
makes a new CA instead, which every client then needs. A ``ca.pem`` without its key (written by
a ScanSeal that did not keep it), a key that is not the certificate's, or an expired CA cannot
be renewed under: that is refused, naming ``--new-ca``, and nothing is written. The files are
put in place together, or none of them (``scanseal._disk.staged_files``).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanseal._disk import disk_error, staged_files
from scanseal.errors import InvalidInput

CA_DAYS: Final = 3650
"""How long a new CA is valid: it outlives many renewals of the server certificate."""
SERVER_DAYS: Final = 397
"""How long a server certificate is valid (the most browsers accept)."""
_CA_NAME: Final = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ScanSeal gateway CA")])

Outcome = Literal["created", "renewed", "replaced"]


@dataclass(frozen=True)
class CertFiles:
    """The files ``make_certs`` wrote or kept, and what it did with the CA."""

    ca: Path
    cert: Path
    key: Path
    ca_key: Path
    outcome: Outcome = "created"
    """``created`` (a new CA, none was there), ``renewed`` (the CA kept, a new server
    certificate under it) or ``replaced`` (``new_ca``: a new CA over an existing one)."""


@dataclass(frozen=True)
class _Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def make_certs(
    directory: Path,
    names: list[str] | None = None,
    *,
    days: int = SERVER_DAYS,
    new_ca: bool = False,
) -> CertFiles:
    """A server certificate for ``names`` (DNS names or IP addresses), under the CA in
    ``directory`` if it has one (and not ``new_ca``), else under a new CA written beside it."""
    names = names or ["localhost", "127.0.0.1"]
    files = CertFiles(
        directory / "ca.pem", directory / "server.pem", directory / "server.key",
        directory / "ca.key",
    )  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    existed = files.ca.exists() or files.ca_key.exists()
    kept = None if new_ca else _existing_ca(files)
    authority = kept if kept is not None else _new_ca(now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(names, key, authority, now, days)
    written = {files.cert: _pem(cert), files.key: _key_pem(key)}
    if kept is None:
        written |= {files.ca: _pem(authority.certificate), files.ca_key: _key_pem(authority.key)}
    _write_together(directory, written)
    outcome: Outcome = "renewed" if kept is not None else "replaced" if existed else "created"
    return CertFiles(files.ca, files.cert, files.key, files.ca_key, outcome)


def _existing_ca(files: CertFiles) -> _Authority | None:
    """The CA to renew under, None when the directory has none; refused when half there."""
    if not files.ca.exists() and not files.ca_key.exists():
        return None
    if not files.ca_key.exists():
        raise InvalidInput(
            f"{files.ca} has no key beside it ({files.ca_key.name}), so no certificate can be "
            "issued under it; --new-ca makes a new CA (every client then needs the new ca.pem)"
        )
    if not files.ca.exists():
        raise InvalidInput(f"{files.ca_key} has no {files.ca.name} beside it; --new-ca starts over")
    try:
        certificate = x509.load_pem_x509_certificate(files.ca.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except OSError as error:
        raise disk_error(error) from None
    except ValueError as error:
        raise InvalidInput(f"{files.ca} or {files.ca_key} is not readable PEM: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        certificate.public_key()
    ):
        raise InvalidInput(f"{files.ca_key} is not the key of {files.ca}; --new-ca starts over")
    if certificate.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        raise InvalidInput(
            f"the CA {files.ca} expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
            "--new-ca makes a new one"
        )
    return _Authority(key, certificate)


def _new_ca(now: datetime.datetime) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _base(_CA_NAME, _CA_NAME, key.public_key(), now, now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _Authority(key, certificate)


def _server_certificate(
    names: list[str],
    key: ec.EllipticCurvePrivateKey,
    authority: _Authority,
    now: datetime.datetime,
    days: int,
) -> x509.Certificate:
    """Signed by ``authority``, valid for ``days`` but never past the CA's own expiry."""
    until = min(now + datetime.timedelta(days=days), authority.certificate.not_valid_after_utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issuer = authority.certificate.subject
    return (
        _base(subject, issuer, key.public_key(), now, until)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(authority.key, hashes.SHA256())
    )


def _write_together(directory: Path, contents: dict[Path, bytes]) -> None:
    """Every file or none, each 0600 until placed (certificates are then made 0644)."""
    finals = list(contents)
    try:
        with staged_files(*finals, durable=True, parent_mode=0o700) as temporaries:
            for temporary, final in zip(temporaries, finals, strict=True):
                temporary.write_bytes(contents[final])
                if final.suffix == ".pem":
                    temporary.chmod(0o644)
    except OSError as error:
        raise disk_error(error, directory, instead=True) from None


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    until: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(until)
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
