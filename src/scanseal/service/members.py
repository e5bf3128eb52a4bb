"""The gateway's members: the cards of its ``members`` directory, registered on the ledger, also
while the gateway runs (docs/KEYS.md §6).

``bootstrap`` enrols every card as the gateway starts. Afterwards the directory is read again

- on SIGHUP (``scanseal serve`` installs the handler, :meth:`Members.rescan_soon`; the scan
  itself runs at the gateway's next tick, within ``tick_seconds``), and
- when a request names an address the gateway has not enrolled (a requester, an upload's
  recipient), at most once every :data:`RESCAN_SECONDS`, so a stream of strangers costs one
  directory listing per interval, not one per request.

A file is parsed again only when its size or modification time changed. A card for an address
that is registered with another card is a rotated card (``scanseal keys rotate``): it is signed by
the same account, so it is registered in place of the previous one — when the gateway is the
contract owner, the only account the contract lets overwrite a card (its ``IdentityRegistered``
event carries the hash it replaced); otherwise the change is refused with the reason, for the
owner to make. A replacement dated before the card this gateway read for that address is refused
as a rollback. At start a card that cannot be enrolled stops ``serve``; while running it is
logged and skipped, and the gateway keeps serving everyone else.

An upload sealed to keys that are not on a member's enrolled card (the sender used a card from
before a rotation) is refused with :class:`~scanseal.errors.InvalidInput` naming the member and
the enrolled card's fingerprint: the envelope would still open, but to keys its holder retired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from eth_account.signers.local import LocalAccount

from scanseal.crypto.identity import IdentityCard
from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, ScanSealError
from scanseal.ledger import Ledger
from scanseal.service.preflight import member_cards
from scanseal.transfer import Manifest

RESCAN_SECONDS: Final = 5.0
"""The least time between two scans that an unknown address triggers."""
_log = logging.getLogger("scanseal.gateway")


@dataclass
class _Seen:
    """What the last scan knew: each file's (size, mtime) and card, each address's card."""

    files: dict[Path, tuple[int, int]] = field(default_factory=dict)
    cards: dict[str, IdentityCard] = field(default_factory=dict)


class Members:
    """Enrols cards on the ledger for the gateway (``operator``), holding ``locked`` for it."""

    def __init__(
        self,
        ledger: Ledger,
        operator: LocalAccount,
        directory: Path | None,
        ledger_lock: threading.RLock,
        *,
        interval: float = RESCAN_SECONDS,
    ) -> None:
        self._ledger = ledger
        self._operator = operator
        self._directory = directory
        self._ledger_lock = ledger_lock
        self._interval = interval
        self._seen = _Seen()
        self._scan_lock = threading.Lock()
        self._next_scan = 0.0
        self._requested = threading.Event()

    def enroll(self, card: IdentityCard) -> bool:
        """Register ``card`` unless it already is; True when the ledger changed. A card for an
        address registered with another card replaces it when the gateway is the owner."""
        previous = self._seen.cards.get(card.address)
        if previous is not None and card.created < previous.created:
            raise IntegrityError(
                f"card of {card.name} ({card.address}) is dated {card.created}, before the "
                f"one enrolled ({previous.created}); refusing to roll it back"
            )
        with self._ledger_lock:
            changed = self._register(card)
        self._seen.cards[card.address] = card
        return changed

    def _register(self, card: IdentityCard) -> bool:
        known = self._ledger.identity_of(card.address)
        if known == card.card_hash:
            return False
        if known is not None:
            owner = self._ledger.owner()
            if owner != self._operator.address:
                raise AccessDenied(
                    f"{card.name} ({card.address}) is registered with another card (a rotated "
                    f"card?); only the contract owner {owner} may register the new one"
                )
            _log.info("re-registering %s (%s): card %s replaces %s", card.name, card.address,
                      card.card_hash.hex()[:16], known.hex()[:16])  # fmt: skip
        self._ledger.register_identity(self._operator, card.address, card.card_hash)
        return True

    def names(self) -> dict[str, str]:
        """Members' names by address, from the cards enrolled, for the audit trail."""
        return {address: card.name for address, card in self._seen.cards.items()}

    def bootstrap(self) -> None:
        """Enrol every card of the directory; the first that cannot be stops the start."""
        with self._scan_lock:
            for path in self._changed():
                self.enroll(IdentityCard.load(path))
            self._next_scan = time.monotonic() + self._interval

    def rescan(self) -> int:
        """Read the directory again now and enrol new or changed cards; how many changed the
        ledger. A card that fails is logged and skipped."""
        with self._scan_lock:
            self._next_scan = time.monotonic() + self._interval
            enrolled = 0
            for path in self._changed():
                try:
                    enrolled += self.enroll(IdentityCard.load(path))
                except ScanSealError as error:
                    # tried again when the file changes or on SIGHUP, not at every scan
                    _log.warning("members: %s not enrolled: %s", path.name, error.reason)
            if enrolled:
                _log.info("members: %d card(s) enrolled from %s", enrolled, self._directory)
            return enrolled

    def rescan_soon(self) -> None:
        """Ask for a full scan at the next :meth:`tick` (SIGHUP: safe in a signal handler)."""
        self._requested.set()

    def tick(self) -> None:
        """The full scan SIGHUP asked for, if it did: every file read again."""
        if self._requested.is_set():
            self._requested.clear()
            with self._scan_lock:
                self._seen.files.clear()
            self.rescan()

    def seen(self, addresses: Iterable[str]) -> None:
        """A request named ``addresses``: rescan if one is not enrolled and the interval passed."""
        if self._directory is None or time.monotonic() < self._next_scan:
            return
        if any(address not in self._seen.cards for address in addresses):
            self.rescan()

    def check_recipients(self, manifest: Manifest) -> None:
        """Refuse an envelope sealed to keys a member's current card no longer has."""
        for recipient in manifest.recipients:
            card = self._seen.cards.get(recipient.address)
            if card is None or recipient.kind not in card.keys:
                continue
            if card.keys[recipient.kind].key_id != recipient.key_id:
                raise InvalidInput(
                    f"the envelope is sealed to keys that are not on the card of "
                    f"{recipient.name} enrolled here (fingerprint {card.fingerprint}): a card "
                    "from before a rotation? seal it to the current card"
                )

    def _changed(self) -> list[Path]:
        """The card files that are new or changed since the last scan."""
        if self._directory is None or not self._directory.is_dir():
            return []
        changed = []
        for path in member_cards(self._directory):
            try:
                status = path.stat()
            except OSError:
                continue
            stamp = (status.st_size, status.st_mtime_ns)
            if self._seen.files.get(path) != stamp:
                self._seen.files[path] = stamp
                changed.append(path)
        return changed


__all__ = ["RESCAN_SECONDS", "Members"]
