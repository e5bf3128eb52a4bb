"""The [dicom] table of scanseal.toml: where the Storage SCP listens and whom it seals for.

```toml
[dicom]
enabled = true
ae_title = "SCANSEAL"
host = "127.0.0.1"
port = 11112
stow = true                                           # POST /dicom-web/studies on the API
recipients = ["cards/radiology.card.json"]           # every pushed study is sealed for these
workers = 2                                           # instances screened and sealed at once
acknowledge = "durable"                               # or "registered" (docs/DICOM.md)
spool_max_instances = 1000                            # backpressure: A700 beyond these
spool_max_mib = 2048
spool_wait_seconds = 10                               # how long a C-STORE waits for room
acceptors = 2                                         # processes answering C-STOREs (0: in-process)
[dicom.routes]
CT_ROOM_2 = ["cards/cardiology.card.json"]            # ...unless the calling AE has a route
```

Relative card paths are relative to the directory of the file; which file, and how its values are
checked, is :func:`scanseal.config.resolve`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanseal.config import Table, paths, resolve
from scanseal.crypto.identity import IdentityCard
from scanseal.errors import InvalidInput, ScanSealError

_MAX_WORKERS = 64
_MAX_ACCEPTORS = 9
ACKNOWLEDGE = ("durable", "registered")
"""When a C-STORE is answered Success: once the instance is in the encrypted spool, or once it is
registered (docs/DICOM.md)."""
_MAX_CARD_BYTES = 1 << 20
_cards: dict[Path, tuple[bytes, IdentityCard]] = {}
_cards_lock = threading.Lock()


@dataclass(frozen=True)
class DicomConfig:
    enabled: bool = False
    ae_title: str = "SCANSEAL"
    host: str = "127.0.0.1"
    port: int = 11112
    stow: bool = False
    recipients: tuple[Path, ...] = ()
    routes: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    workers: int = 2
    """C-STOREs screened and sealed at the same time, whatever the number of associations
    (the detector, hashing and encryption release the GIL; registration stays one at a time)."""
    acknowledge: str = "durable"
    """``durable``: Success once the instance is in the spool (encrypted, fsynced), sealed and
    registered by the workers after; ``registered``: Success once it is registered."""
    spool_max_instances: int = 1000
    spool_max_mib: int = 2048
    spool_wait_seconds: float = 10.0
    """How long a C-STORE waits for room in a full spool before it is answered A700."""
    acceptors: int = 2
    """``durable``: processes that answer associations (check, spool, Success) beside the
    gateway, which keeps the spool's accounting, screening, sealing and registration; 0 answers
    them in the gateway's own process (docs/DICOM.md)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:  # 0: any free port, which the SCP reports once listening
            raise InvalidInput("dicom: port out of range")
        if not 0 < len(self.ae_title) <= 16 or not self.ae_title.isascii():
            raise InvalidInput("dicom: ae_title must be 1 to 16 ASCII characters")
        if not 1 <= self.workers <= _MAX_WORKERS:
            raise InvalidInput(f"dicom: workers must be 1 to {_MAX_WORKERS}")
        if self.acknowledge not in ACKNOWLEDGE:
            raise InvalidInput('dicom: acknowledge must be "durable" or "registered"')
        if self.spool_max_instances < 1 or self.spool_max_mib < 1:
            raise InvalidInput("dicom: spool_max_instances and spool_max_mib must be positive")
        if not 0 <= self.acceptors <= _MAX_ACCEPTORS:
            raise InvalidInput(f"dicom: acceptors must be 0 to {_MAX_ACCEPTORS}")
        if not 0 <= self.spool_wait_seconds <= 600:
            raise InvalidInput("dicom: spool_wait_seconds must be 0 to 600")
        if self.enabled and not self.recipients:
            raise InvalidInput("dicom: name at least one recipient card")

    def cards_for(self, calling_ae: str) -> list[IdentityCard]:
        """The recipients of what ``calling_ae`` pushes: its route, else the default list."""
        paths = self.routes.get(calling_ae.strip(), self.recipients)
        return [card_at(path) for path in paths]

    def problems(self) -> list[ScanSealError]:
        """With the SCP enabled, every recipient and route card that is missing or does not
        parse, one error each: otherwise the SCP would start and refuse every C-STORE."""
        if not self.enabled:
            return []
        found: list[ScanSealError] = []
        named = [("recipients", self.recipients)]
        named += [(f"routes.{ae}", cards) for ae, cards in sorted(self.routes.items())]
        for key, cards in named:
            for path in cards:
                try:
                    IdentityCard.load(path)
                except ScanSealError as error:
                    found.append(type(error)(f"dicom: {key}: {error.reason}"))
        return found

    def card_paths(self) -> set[Path]:
        """Every card file the SCP seals for (the default list and every route's)."""
        return {*self.recipients, *(path for cards in self.routes.values() for path in cards)}

    @classmethod
    def from_table(cls, table: Table) -> DicomConfig:
        """The checked [dicom] table; card paths are relative to the file's directory."""
        values = dict(table.relative_to_file("recipients").values)
        if "routes" in values:
            values["routes"] = _routes(values["routes"], table)
        return cls(**values)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> DicomConfig:
        """The [dicom] table of the file :func:`scanseal.config.resolve` chooses."""
        return cls.from_table(resolve(path, env).table("dicom"))


def _routes(routes: Any, table: Table) -> dict[str, tuple[Path, ...]]:
    """``[dicom.routes]``: calling AE title = [card files], each relative to the file."""
    if not isinstance(routes, dict):
        raise InvalidInput(
            f"{table.origin}: dicom routes must be a table of AE title = [card files]"
        )
    chosen: dict[str, tuple[Path, ...]] = {}
    for ae, cards in routes.items():
        try:
            chosen[ae] = tuple(table.base_dir / card for card in paths(cards))
        except ValueError:
            raise InvalidInput(
                f"{table.origin}: dicom recipients must be a list of card files (routes.{ae})"
            ) from None
    return chosen


def card_at(path: Path) -> IdentityCard:
    """The verified card in the file at ``path``, as :meth:`IdentityCard.load` reads it, but
    parsed and its signature checked once per content of the file: every C-STORE reads the
    file again (a card replaced on disk, say after a rotation, is used from the next instance
    on), and only bytes that differ from the last ones verified are verified again. Any
    refusal is ``IdentityCard.load``'s, naming the file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_CARD_BYTES + 1)
    except OSError:
        return IdentityCard.load(path)  # raises, naming the file and why
    with _cards_lock:
        known = _cards.get(path)
    if known is not None and known[0] == data:
        return known[1]
    try:
        card = IdentityCard.from_json(data.decode("utf-8"))
    except (ScanSealError, UnicodeDecodeError):
        return IdentityCard.load(path)  # raises, naming the file (or reads a newer one)
    if len(data) <= _MAX_CARD_BYTES:
        with _cards_lock:
            _cards[path] = (data, card)
    return card
