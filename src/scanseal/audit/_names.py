"""Names beside addresses: the members' cards say who an address is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from scanseal.crypto.identity import IdentityCard
from scanseal.errors import ScanSealError


def with_names(trail: list[dict[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each entry with ``actor_name`` and ``subject_name`` from ``names`` (by checksummed
    address; None for an address no card names). A subject that only claimed its identity
    (``subject_verified`` False) gets no name: the name would vouch for a claim."""
    named = []
    for entry in trail:
        subject = entry.get("subject")
        verified = entry.get("subject_verified") is not False
        named.append(
            {
                **entry,
                "actor_name": name_of(entry.get("actor"), names),
                "subject_name": name_of(subject, names) if verified else None,
                "claimed_name": None if verified else name_of(subject, names),
            }
        )
    return named


def name_of(address: object, names: Mapping[str, str]) -> str | None:
    """The name for ``address``, if a card gives one."""
    if not isinstance(address, str) or not is_address(address):
        return None
    return names.get(to_checksum_address(address))


def names_from_cards(cards: Iterable[Path]) -> dict[str, str]:
    """Names by address from identity-card files; a file that is no valid card is skipped
    (names are a reading aid: the addresses stay the evidence)."""
    names: dict[str, str] = {}
    for path in cards:
        try:
            card = IdentityCard.load(path)
        except (ScanSealError, OSError):
            continue
        names[card.address] = card.name
    return names
