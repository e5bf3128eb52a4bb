"""The storage interface every backend implements, and what it reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO

from scanseal.storage._builder import Readable


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """What a store knows about one object (a file DAG named by its root CID)."""

    cid: str
    size: int
    """Content size in bytes (the UnixFS file size)."""
    blocks: int
    """Number of distinct blocks in the local copy (0 when the object is only on nodes)."""
    pinned: bool
    """Pinned in the local store (kept by garbage collection; listed by ``pins()``)."""
    replicas: tuple[str, ...] = field(default=())
    """Remote nodes that hold and pin the object (empty for the embedded store)."""


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """The local copy of a store as an operator watches it (:meth:`BlobStore.usage`)."""

    root: str
    """The directory it lives in."""
    stored_bytes: int | None
    """Bytes of the blocks it holds (None when its index cannot be read)."""
    free_bytes: int | None
    """Free space of the file system under ``root`` for this user (None when unknown)."""
    unwritable: str | None
    """Why a probe write under ``root`` failed; None when it succeeded."""


class BlobStore(ABC):
    """Content-addressed storage of opaque byte streams (ScanSeal stores sealed envelopes).

    ``put`` returns the CID kubo would give for ``ipfs add --cid-version=1`` of the same bytes;
    ``get`` returns a stream whose every byte was checked against that CID, so callers may treat
    the store, and any node behind it, as untrusted.
    """

    @abstractmethod
    def put(self, stream: Readable) -> str:
        """Store the bytes read from ``stream`` to its end; return the CID (base32 CIDv1)."""

    @abstractmethod
    def get(self, cid: str) -> BinaryIO:
        """Open the object for reading; a block that fails its hash raises IntegrityError."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """True when every block of the object is available."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep the object (and, for replicated stores, make sure enough nodes pin it)."""

    @abstractmethod
    def unpin(self, cid: str) -> None:
        """Stop keeping the object; idempotent."""

    @abstractmethod
    def stat(self, cid: str) -> ObjectStat:
        """Size, block count, pin state and replicas of the object."""

    @abstractmethod
    def pins(self) -> list[str]:
        """CIDs of the objects pinned locally, sorted."""

    @abstractmethod
    def close(self) -> None:
        """Release resources (database handles, open packs)."""

    def usage(self) -> StoreUsage | None:
        """Bytes held, free space and whether the local copy can be written (probing it with a
        small file); None for a store with no local copy."""
        return None

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
