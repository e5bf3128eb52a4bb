"""Local sealing: a file becomes an envelope plus a signed manifest, and back.

``seal_file`` ingests the image once (:func:`scanseal.ingest.read_image`: one header parse, one
decode, shared by the detector's screening and the pixel digest), then reads its bytes once
more while encrypting (H1 is computed in that same pass). ``open_sealed`` decrypts into a file
that has no name yet (Linux ``O_TMPFILE`` in the output's directory, mode 0600), checks the
envelope digest, H1, H2, H3 and the recipient list against the signed manifest, and only then
links it into place: at no moment does a directory entry hold plaintext that has not passed
every check, not even if the process is killed. Where ``O_TMPFILE`` is missing it falls back
to a private temporary file beside the output, removed on any error (but left behind by a
crash). ``verify_sealed`` with a key also re-derives the pixel digest.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from scanseal._disk import disk_errors
from scanseal._json import parse_object
from scanseal.crypto import envelope
from scanseal.crypto.envelope import Header
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.crypto.stanzas import DEFAULT_KIND, RecipientKey
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.ingest import ImageMetadata
from scanseal.integrity import hash_chain, verify_chain
from scanseal.integrity.chain import encode_timestamp
from scanseal.storage import BlobStore, cid_of
from scanseal.transfer._output import plaintext_output, staged
from scanseal.transfer._pipeline import HashingReader, HashingWriter
from scanseal.transfer.grants import check_same_payload
from scanseal.transfer.manifest import (
    Manifest,
    Recipient,
    Uploader,
    decrypt_metadata,
    encrypt_metadata,
)
from scanseal.transfer.verdict import not_screened_entry

if TYPE_CHECKING:  # the decoders (pydicom, numpy): loaded where an image is sealed or checked
    from scanseal.ingest import IngestedImage

MANIFEST_SUFFIX = ".manifest.json"
ScreenPolicy = Literal["flag", "block", "off"]
"""What sealing does with the tamper detector's verdict (see ``seal_file``)."""
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
    source: Path | IngestedImage,
    recipients: Sequence[IdentityCard],
    uploader: Identity,
    output: Path,
    *,
    kind: str = DEFAULT_KIND,
    segment_size: int = envelope.DEFAULT_SEGMENT_SIZE,
    timestamp: int | None = None,
    progress: Progress | None = None,
    store: BlobStore | None = None,
    screen: ScreenPolicy = "flag",
    digest: bytes | None = None,
) -> SealedFile:
    """Seal ``source`` for ``recipients``; write ``output`` and its manifest atomically.

    The outputs are checked first (:func:`check_seal_output`); on any failure afterwards
    neither the envelope nor the manifest nor a temporary file is left. With a ``store``, the
    envelope is stored before the manifest is signed, so the manifest names its CID; if
    anything fails after that, the object is unpinned again. A full disk or an unwritable
    output is a ScanSealError naming the file (see ``scanseal._disk``).

    ``screen`` runs the tamper detector first: ``flag`` records its verdict in the signed
    manifest, ``block`` also refuses (IntegrityError) an image it flags, ``off`` skips it. A
    DICOM object without pixels is sealed with "not screened: no pixels" signed in its place
    (under ``flag`` and ``block``), and its content digest as its pixel digest.

    ``source`` is a file, or the file already ingested (:func:`scanseal.ingest.read_image`,
    e.g. to refuse a bad image before asking for a passphrase) so that it is not parsed again;
    ``digest``, its pixel digest when the caller already computed it (a study send, which looks
    the instance up by it first), so that it is not computed again.
    """
    if not recipients:
        raise InvalidInput("name at least one recipient (--to CARD)")
    check_seal_output(output)
    # One ingested image: the header is parsed once and the pixels decoded once for all steps.
    from scanseal.integrity import pixel_digest  # the decoders load only here

    image = _ingested(source)
    verdict = _screen(image, screen)
    keys = [card.recipient(kind) for card in recipients]
    manifest_path = manifest_path_for(output)
    with (
        _unpinned_on_failure(store) as stored,
        disk_errors(output),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixel-digest") as pool,
        staged(output, manifest_path) as (env_tmp, man_tmp),
    ):
        # Decoding and hashing the pixels overlaps the encryption pass (hashlib and file
        # reads release the GIL), so on a second core it costs no wall time.
        pixels = pool.submit(pixel_digest, image) if digest is None else _done(digest)
        sealed = _encrypt(image, env_tmp, keys, segment_size, progress)
        cid = _store_envelope(store, env_tmp)
        stored += [cid] if cid is not None else []
        manifest = _manifest(
            image, sealed, pixels, zip(recipients, keys, strict=True), uploader,
            cid=cid, screen=verdict, timestamp=timestamp,
        )  # fmt: skip
        man_tmp.write_text(manifest.to_json(), encoding="utf-8")
    return SealedFile(output, manifest_path, manifest)


def _ingested(source: Path | IngestedImage) -> IngestedImage:
    """``source`` ingested once (read_image), unless it already is."""
    from scanseal.ingest import IngestedImage, read_image

    return source if isinstance(source, IngestedImage) else read_image(source)


def _manifest(
    image: IngestedImage,
    sealed: _Encrypted,
    pixels: Future[bytes],
    recipients: Iterable[tuple[IdentityCard, RecipientKey]],
    uploader: Identity,
    *,
    cid: str | None,
    screen: dict[str, Any] | None,
    timestamp: int | None,
) -> Manifest:
    """The signed manifest binding the envelope, the hashes, the recipients and the verdict."""
    canonical = image.metadata.canonical_bytes()
    return Manifest(
        envelope_sha256=sealed.envelope_sha256,
        envelope_size=sealed.envelope_size,
        image_format=image.format,
        image_size=image.size,
        chain=hash_chain(
            sealed.h1, canonical, int(time.time()) if timestamp is None else timestamp
        ),
        pixel_digest=pixels.result(),
        metadata_ciphertext=encrypt_metadata(sealed.file_key, sealed.header.salt, canonical),
        recipients=tuple(
            Recipient(card.name, card.address, key.kind, key.key_id) for card, key in recipients
        ),
        uploader=Uploader(uploader.name, uploader.card.address, uploader.card.card_hash),
        cid=cid,
        screen=screen,
    ).signed_by(uploader.sign)


def _done(value: bytes) -> Future[bytes]:
    done: Future[bytes] = Future()
    done.set_result(value)
    return done


@contextmanager
def _unpinned_on_failure(store: BlobStore | None) -> Iterator[list[str]]:
    """Collects the CIDs a seal stores; if the seal then fails, they are unpinned again."""
    stored: list[str] = []
    try:
        yield stored
    except BaseException:
        if store is not None:
            _unpin_quietly(store, stored)
        raise


def _unpin_quietly(store: BlobStore, cids: Sequence[str]) -> None:
    """Unpin what a failed seal stored: the object is no longer kept under a name.

    The failure being handled is the one to report; one of unpinning (the disk that was full
    may still be) must not replace it.
    """
    for cid in cids:
        with suppress(Exception):
            store.unpin(cid)


def _screen(image: IngestedImage, policy: ScreenPolicy) -> dict[str, Any] | None:
    """The manifest's ``screen`` entry for ``policy``; raises if ``block`` and flagged."""
    if policy not in ("flag", "block", "off"):
        raise InvalidInput(f"screen policy must be flag, block or off, not {policy!r}")
    if policy == "off":
        return None
    if not image.has_pixels:  # SR, KOS, RT plan, PDF…: nothing the screen could look at
        return not_screened_entry(policy)
    from scanseal.detect import default_detector  # onnxruntime loads only when screening

    result = default_detector().screen(image)
    if policy == "block" and result.tampered:
        raise IntegrityError(
            f"{image.path.name}: refused by screening: tampering score {result.score:.3f} "
            f">= threshold {result.threshold:.3f} (model {result.model_version})"
        )
    return result.manifest_entry(policy)


@dataclass(frozen=True)
class _Encrypted:
    header: Header
    file_key: bytes
    h1: bytes
    envelope_sha256: bytes
    envelope_size: int


def _encrypt(
    source: IngestedImage,
    target: Path,
    keys: Sequence[RecipientKey],
    segment_size: int,
    progress: Progress | None,
) -> _Encrypted:
    """One pass over the source: encrypt, hashing the plaintext (H1) and the envelope."""
    h1 = hashlib.sha256()

    def observe(chunk: bytes) -> None:
        h1.update(chunk)
        if progress is not None:
            progress(len(chunk))

    with source.open() as src, target.open("wb") as raw_dst:
        dst = HashingWriter(raw_dst)
        header, file_key = envelope.seal(
            src,
            dst,  # type: ignore[arg-type]  # duck-typed: only write() is used
            keys,
            segment_size=segment_size,
            on_plaintext=observe,
        )
    return _Encrypted(header, file_key, h1.digest(), dst.digest.digest(), dst.size)


def _store_envelope(store: BlobStore | None, envelope_file: Path) -> str | None:
    if store is None:
        return None
    with envelope_file.open("rb") as stream:
        return store.put(stream)


def check_seal_output(output: Path) -> None:
    """Refuse an envelope path (or its manifest's) that cannot become a file, before any work.

    A directory, or anything else that is not a regular file, is never replaced; neither is a
    parent that is not a directory.
    """
    for path in (output, manifest_path_for(output)):
        if path.is_dir():
            raise InvalidInput(f"{path} is a directory: name the envelope file to write")
        if path.exists() and not path.is_file():
            raise InvalidInput(f"{path} exists and is not a regular file")
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise InvalidInput(f"{parent} is not a directory")


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


def decrypt_checked(
    envelope_path: Path | bytes,
    manifest: Manifest,
    identity: Identity,
    dst: BinaryIO,
    progress: Progress | None,
    granted: Header | None = None,
    *,
    key_for: Callable[[Header, Header], bytes] | None = None,
) -> ImageMetadata:
    """Decrypt into ``dst`` and check every binding except the pixel digest: the envelope
    digest, the recipient list, H1–H3 and the metadata. With ``granted`` (a grant's header,
    already verified against the owner) the file key is unwrapped from it instead, after its
    payload parameters are checked to be the envelope's. ``envelope_path`` may be the
    envelope's bytes themselves (a fetched bundle's, opened without a copy on disk).
    ``key_for`` (``transfer.checked.Unlocked.key_for``), given the envelope's header and the
    one to unwrap from, returns the file key already unwrapped from them instead."""
    plain = HashingWriter(dst)
    with _envelope_stream(envelope_path) as raw:
        src = HashingReader(raw)
        original = envelope.read_header(src)  # type: ignore[arg-type]  # duck-typed read()
        header = original
        if granted is not None:
            check_same_payload(original, granted)
            header = granted
        if key_for is None:
            file_key = envelope.unlock(header, identity.unwrap_keys)
        else:
            file_key = key_for(original, header)
        envelope.decrypt_payload(
            src,  # type: ignore[arg-type]  # duck-typed: only read() is used
            plain,  # type: ignore[arg-type]  # duck-typed: only write() is used
            file_key,
            header,
            _progress_only(progress),
        )
    if src.digest.digest() != manifest.envelope_sha256 or src.size != manifest.envelope_size:
        raise IntegrityError("envelope bytes differ from the signed manifest's digest")
    _check_recipients(original, manifest)
    canonical = decrypt_metadata(file_key, header.salt, manifest.metadata_ciphertext)
    verify_chain(manifest.chain, plain.digest.digest(), canonical)
    return ImageMetadata.from_dict(_parse_metadata(canonical))


def _envelope_stream(source: Path | bytes) -> BinaryIO:
    """The envelope to read: its file, or its bytes when already in memory."""
    return io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")


def _parse_metadata(canonical: bytes) -> dict[str, object]:
    return parse_object(canonical, "decrypted metadata")


def open_sealed(
    envelope_path: Path,
    identity: Identity,
    output: Path,
    *,
    manifest_path: Path | None = None,
    progress: Progress | None = None,
    check_pixels: bool = False,
) -> OpenedFile:
    """Decrypt and verify; the plaintext appears at ``output`` only if every check holds.

    H1 matching the signed manifest means the bytes are exactly those the uploader sealed, and
    so are their pixels. Recomputing the pixel digest (``check_pixels``, what ``verify`` does)
    additionally audits the uploader's own claim, at the price of decoding the image again.
    """
    manifest = _load_manifest(envelope_path, manifest_path)
    with plaintext_output(output) as (dst, readable):
        metadata = decrypt_checked(envelope_path, manifest, identity, dst, progress)
        if check_pixels:
            from scanseal.integrity import pixel_digest

            dst.flush()
            if pixel_digest(readable) != manifest.pixel_digest:
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
                envelope_path,
                identity,
                Path(scratch) / "image",
                manifest_path=manifest_path,
                check_pixels=True,
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
    if manifest.cid is not None:
        with envelope_path.open("rb") as stream:
            if cid_of(stream) != manifest.cid:
                raise IntegrityError("envelope does not hash to the CID the manifest names")
        report.checks.append(f"envelope matches its CID {manifest.cid}")
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
