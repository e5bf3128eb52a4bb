"""Local sealing: a file becomes an envelope plus a signed manifest, and back.

``seal_file`` reads the image once for validation and the pixel digest, then once more while
encrypting (H1 is computed in that same pass). ``open_sealed`` decrypts into a private temporary
file beside the output, checks the envelope digest, H1, H2, H3, the pixel digest and the
recipient list against the signed manifest, and only then renames it into place: a failure at
any point leaves no plaintext behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from scanseal._json import parse_object
from scanseal.crypto import envelope
from scanseal.crypto.envelope import Header
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.crypto.stanzas import DEFAULT_KIND, RecipientKey
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.ingest import ImageMetadata, read_metadata
from scanseal.integrity import hash_chain, verify_chain
from scanseal.integrity.chain import encode_timestamp
from scanseal.integrity.pixels import pixel_digest
from scanseal.transfer._pipeline import HashingReader, HashingWriter
from scanseal.transfer.manifest import (
    Manifest,
    Recipient,
    Uploader,
    decrypt_metadata,
    encrypt_metadata,
)

MANIFEST_SUFFIX = ".manifest.json"
Progress = Callable[[int], None]
"""Called with the number of plaintext bytes just processed (drives progress bars)."""


def manifest_path_for(envelope_path: Path) -> Path:
    """Where the manifest of an envelope lives: beside it, ``NAME.manifest.json``."""
    return envelope_path.with_name(envelope_path.name + MANIFEST_SUFFIX)


@dataclass(frozen=True)
class SealedFile:
    envelope: Path
    manifest_path: Path
    manifest: Manifest


@dataclass(frozen=True)
class OpenedFile:
    path: Path
    manifest: Manifest
    metadata: ImageMetadata


@dataclass
class VerifyReport:
    """What ``verify_sealed`` checked; ``decrypted`` says whether the plaintext checks ran."""

    manifest: Manifest
    checks: list[str] = field(default_factory=list)
    decrypted: bool = False


# --- seal ------------------------------------------------------------------------------------


def seal_file(
    source: Path,
    recipients: Sequence[IdentityCard],
    uploader: Identity,
    output: Path,
    *,
    kind: str = DEFAULT_KIND,
    segment_size: int = envelope.DEFAULT_SEGMENT_SIZE,
    timestamp: int | None = None,
    progress: Progress | None = None,
) -> SealedFile:
    """Seal ``source`` for ``recipients``; write ``output`` and its manifest atomically."""
    if not recipients:
        raise InvalidInput("name at least one recipient (--to CARD)")
    metadata = read_metadata(source)
    keys = [card.recipient(kind) for card in recipients]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixel-digest") as pool:
        # Decoding and hashing the pixels overlaps the encryption pass (hashlib and file reads
        # release the GIL), so on a second core it costs no wall time.
        pixels = pool.submit(pixel_digest, source)
        return _seal_validated(
            source, metadata, pixels, recipients, keys, uploader, output,
            segment_size=segment_size, timestamp=timestamp, progress=progress,
        )  # fmt: skip


def _seal_validated(
    source: Path,
    metadata: ImageMetadata,
    pixels: Future[bytes],
    recipients: Sequence[IdentityCard],
    keys: Sequence[RecipientKey],
    uploader: Identity,
    output: Path,
    *,
    segment_size: int,
    timestamp: int | None,
    progress: Progress | None,
) -> SealedFile:
    h1 = hashlib.sha256()

    def observe(chunk: bytes) -> None:
        h1.update(chunk)
        if progress is not None:
            progress(len(chunk))

    manifest_path = manifest_path_for(output)
    with _staged(output) as env_tmp, _staged(manifest_path) as man_tmp:
        with source.open("rb") as src, env_tmp.open("wb") as raw_dst:
            dst = HashingWriter(raw_dst)
            header, file_key = envelope.seal(
                src,
                dst,  # type: ignore[arg-type]  # duck-typed: only write() is used
                keys,
                segment_size=segment_size,
                on_plaintext=observe,
            )
        chain = hash_chain(
            h1.digest(),
            metadata.canonical_bytes(),
            int(time.time()) if timestamp is None else timestamp,
        )
        manifest = Manifest(
            envelope_sha256=dst.digest.digest(),
            envelope_size=dst.size,
            image_format=metadata.format,
            image_size=source.stat().st_size,
            chain=chain,
            pixel_digest=pixels.result(),
            metadata_ciphertext=encrypt_metadata(file_key, header.salt, metadata.canonical_bytes()),
            recipients=tuple(
                Recipient(card.name, card.address, key.kind, key.key_id)
                for card, key in zip(recipients, keys, strict=True)
            ),
            uploader=Uploader(uploader.name, uploader.card.address, uploader.card.card_hash),
        ).signed_by(uploader.sign)
        man_tmp.write_text(manifest.to_json(), encoding="utf-8")
    return SealedFile(output, manifest_path, manifest)


@contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A temporary file beside ``final``: renamed into place on success, removed on failure.

    Nested stagings commit in reverse order only after every body succeeded, so a seal leaves
    either both envelope and manifest or neither.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


# --- open and verify ---------------------------------------------------------------------------


def _progress_only(progress: Progress | None) -> Callable[[bytes], None] | None:
    if progress is None:
        return None
    return lambda chunk: progress(len(chunk))


def _load_manifest(envelope_path: Path, manifest_path: Path | None) -> Manifest:
    if not envelope_path.is_file():
        raise InvalidInput(f"{envelope_path}: no such envelope")
    path = manifest_path or manifest_path_for(envelope_path)
    if not path.is_file():
        raise InvalidInput(f"{path}: manifest not found (expected beside the envelope)")
    manifest = Manifest.load(path)
    manifest.verify_signature()
    return manifest


def _check_recipients(header: Header, manifest: Manifest) -> None:
    """The header's stanzas must be exactly the signed recipient list, in order."""
    in_header = [(s.kind, s.key_id) for s in header.stanzas]
    in_manifest = [(r.kind, r.key_id) for r in manifest.recipients]
    if in_header != in_manifest:
        raise IntegrityError("envelope recipients differ from the signed manifest's")


def _decrypt_checked(
    envelope_path: Path,
    manifest: Manifest,
    identity: Identity,
    dst: BinaryIO,
    progress: Progress | None,
) -> ImageMetadata:
    """Decrypt into ``dst`` and check every binding except the pixel digest."""
    plain = HashingWriter(dst)
    with envelope_path.open("rb") as raw:
        src = HashingReader(raw)
        header, file_key = envelope.open_envelope(
            src,  # type: ignore[arg-type]  # duck-typed: only read() is used
            plain,  # type: ignore[arg-type]  # duck-typed: only write() is used
            identity.transport_keys.values(),
            on_plaintext=_progress_only(progress),
        )
    h1 = plain.digest
    if src.digest.digest() != manifest.envelope_sha256 or src.size != manifest.envelope_size:
        raise IntegrityError("envelope bytes differ from the signed manifest's digest")
    _check_recipients(header, manifest)
    canonical = decrypt_metadata(file_key, header.salt, manifest.metadata_ciphertext)
    verify_chain(manifest.chain, h1.digest(), canonical)
    return ImageMetadata.from_dict(_parse_metadata(canonical))


def _parse_metadata(canonical: bytes) -> dict[str, object]:
    return parse_object(canonical, "decrypted metadata")


def open_sealed(
    envelope_path: Path,
    identity: Identity,
    output: Path,
    *,
    manifest_path: Path | None = None,
    progress: Progress | None = None,
) -> OpenedFile:
    """Decrypt and fully verify; the plaintext appears at ``output`` only if every check holds."""
    manifest = _load_manifest(envelope_path, manifest_path)
    with _staged(output) as tmp:
        os.chmod(tmp, 0o600)
        with tmp.open("wb") as dst:
            metadata = _decrypt_checked(envelope_path, manifest, identity, dst, progress)
        if pixel_digest(tmp) != manifest.pixel_digest:
            raise IntegrityError("decoded pixels differ from the signed pixel digest")
    return OpenedFile(output, manifest, metadata)


def verify_sealed(
    envelope_path: Path,
    identity: Identity | None = None,
    *,
    manifest_path: Path | None = None,
) -> VerifyReport:
    """Check what can be checked: everything public, and with a recipient identity everything.

    Without an identity: the manifest signature, the envelope digest and size, the recipient
    list and the H3 link. With one: also decryption of every segment, H1, H2, the metadata and
    the pixel digest, on a private temporary copy that is removed afterwards.
    """
    manifest = _load_manifest(envelope_path, manifest_path)
    report = VerifyReport(manifest, [f"manifest signed by uploader {manifest.uploader.address}"])
    if identity is not None:
        with tempfile.TemporaryDirectory(prefix="scanseal-verify-") as scratch:
            open_sealed(
                envelope_path, identity, Path(scratch) / "image", manifest_path=manifest_path
            )
        report.decrypted = True
        report.checks += [
            "envelope digest and recipients match the manifest",
            "every segment authenticated",
            "H1, H2 and H3 match",
            "pixel digest matches",
        ]
        return report
    if envelope.envelope_digest(envelope_path) != manifest.envelope_sha256:
        raise IntegrityError("envelope bytes differ from the signed manifest's digest")
    with envelope_path.open("rb") as src:
        header = envelope.read_header(src)
    _check_recipients(header, manifest)
    _check_h3(manifest)
    report.checks += ["envelope digest and recipients match the manifest", "H3 links H2"]
    return report


def _check_h3(manifest: Manifest) -> None:
    chain = manifest.chain
    expected = hashlib.sha256(chain.h2 + encode_timestamp(chain.timestamp)).digest()
    if expected != chain.h3:
        raise IntegrityError("hash chain broken: H3 does not follow from H2 and the timestamp")
