"""identityOf answered from memory, set by the IdentityRegistered event that changes it."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.exceptions import EncodingError

from scanseal.ledger import Ledger

from .conftest import World, card


def _count_reads(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every identityOf eth_call the ledger makes, by account."""
    reads: list[str] = []
    view = ledger._contract.view

    def counting(function: str, *args: Any) -> tuple[Any, ...]:
        if function == "identityOf":
            reads.append(str(args[0]))
        return view(function, *args)

    monkeypatch.setattr(ledger._contract, "view", counting)
    return reads


def test_repeated_questions_are_answered_from_memory(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, cast = world.ledger, world.cast
    reads = _count_reads(ledger, monkeypatch)
    for _ in range(3):
        assert ledger.identity_of(cast.grantee.address) == card(cast.grantee)
        assert ledger.identity_of(cast.stranger.address) is None
    # the grantee's card came with its registration event; the stranger has none: one call
    assert reads == [cast.stranger.address]


def test_a_registration_by_any_transaction_is_seen_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, cast = world.ledger, world.cast
    assert ledger.identity_of(cast.stranger.address) is None  # cached as unregistered
    assert ledger.identity_of(cast.uploader.address) == card(cast.uploader)
    reads = _count_reads(ledger, monkeypatch)
    # sent straight to the contract, past the Ledger's own methods: only the event tells
    new_card = bytes(32 * [7])
    args = [cast.stranger.address, card(cast.stranger)]
    ledger._contract.transact(cast.admin, "registerIdentity", b"", args, "register")
    ledger._contract.transact(
        cast.owner, "registerIdentity", b"", [cast.uploader.address, new_card], "re-register"
    )  # the owner alone may change a registered card
    assert ledger.identity_of(cast.stranger.address) == card(cast.stranger)
    assert ledger.identity_of(cast.uploader.address) == new_card
    assert ledger.identity_of(cast.grantee.address) == card(cast.grantee)
    assert reads == []  # every answer came from an event, none from before it


def test_a_malformed_account_is_refused_as_the_contract_call_refuses_it(world: World) -> None:
    with pytest.raises(EncodingError, match="cannot be encoded"):
        world.ledger.identity_of("0x1234")
