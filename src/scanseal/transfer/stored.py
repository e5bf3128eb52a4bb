"""Sealed images in content-addressed storage.

The envelope is stored while sealing, so the signed manifest can name its CID. The manifest is
then stored as well, and its CID is the receipt: one identifier from which a recipient fetches
the manifest, then the envelope it names, each verified against its CID on the way in (and the
envelope again against the manifest's SHA-256 when it is opened).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scanseal.errors import IntegrityError
from scanseal.storage import BlobStore
from scanseal.transfer.local import SealedFile, manifest_path_for
from scanseal.transfer.manifest import Manifest


def publish_manifest(sealed: SealedFile, store: BlobStore) -> str:
    """Store the manifest's exact bytes; returns the manifest CID (the seal's receipt)."""
    if sealed.manifest.cid is None:
        raise IntegrityError("the manifest names no envelope CID: seal with a store first")
    with sealed.manifest_path.open("rb") as manifest:
        return store.put(manifest)


def fetch_sealed(manifest_cid: str, store: BlobStore, workdir: Path) -> Path:
    """Fetch a manifest and its envelope by CID into ``workdir``; returns the envelope path.

    Both are verified block by block against their CIDs as they are read; the manifest must be
    well formed and signed before the envelope is fetched at all.
    """
    envelope_path = workdir / "envelope.sseal"
    manifest_path = manifest_path_for(envelope_path)
    _copy_out(store, manifest_cid, manifest_path)
    manifest = Manifest.load(manifest_path)
    manifest.verify_signature()
    if manifest.cid is None:
        raise IntegrityError(f"manifest {manifest_cid} names no envelope CID")
    _copy_out(store, manifest.cid, envelope_path)
    return envelope_path


def _copy_out(store: BlobStore, cid: str, target: Path) -> None:
    with store.get(cid) as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
