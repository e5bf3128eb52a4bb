"""Sealing for an upload: what a gateway client or receiver seals before a gateway stores it.

The envelope is sealed for the recipients and for the uploader (who must be able to grant
later), and its manifest names the envelope's CID, though nothing is stored here: the gateway
stores the bytes. ``_CidOnly`` is that explicit "name, do not keep" store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.errors import InvalidInput
from scanseal.storage import BlobStore, ObjectStat, Readable, cid_of
from scanseal.transfer.local import Progress, ScreenPolicy, SealedFile, seal_file

if TYPE_CHECKING:
    from scanseal.ingest import IngestedImage


def with_self(recipients: Sequence[IdentityCard], owner: Identity) -> list[IdentityCard]:
    """The recipient list plus the owner's own card: an owner must be able to re-wrap later."""
    cards = list(recipients)
    if all(card.address != owner.address for card in cards):
        cards.append(owner.card)
    return cards


def seal_for_upload(
    source: Path | IngestedImage,
    recipients: Sequence[IdentityCard],
    uploader: Identity,
    workdir: Path,
    *,
    progress: Progress | None = None,
    screen: ScreenPolicy = "flag",
    name: str | None = None,
    digest: bytes | None = None,
) -> SealedFile:
    """Seal for ``recipients`` and the uploader (who must be able to grant later); the
    manifest names the envelope's CID, though nothing is stored locally. ``screen`` is the
    tamper-screening policy of :func:`~scanseal.transfer.local.seal_file`. The envelope is
    ``workdir/NAME.sseal``, NAME the source's file name unless ``name`` says otherwise;
    ``digest`` is the source's pixel digest when already known (``seal_file``)."""
    path = source if isinstance(source, Path) else source.path
    return seal_file(
        source,
        with_self(recipients, uploader),
        uploader,
        workdir / ((name or path.name) + ".sseal"),
        store=_CidOnly(),
        progress=progress,
        screen=screen,
        digest=digest,
    )


class _CidOnly(BlobStore):
    """A store that only names bytes: sealing for upload needs the CID, not a local copy."""

    def put(self, stream: Readable) -> str:
        return cid_of(stream)

    def get(self, cid: str) -> BinaryIO:
        raise InvalidInput("nothing is stored locally when sending to a gateway")

    def has(self, cid: str) -> bool:
        return False

    def pin(self, cid: str) -> None:
        return None

    def unpin(self, cid: str) -> None:
        return None

    def stat(self, cid: str) -> ObjectStat:
        raise InvalidInput("nothing is stored locally when sending to a gateway")

    def pins(self) -> list[str]:
        return []

    def close(self) -> None:
        return None
