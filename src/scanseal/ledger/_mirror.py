"""The contract's access table, mirrored in memory from its events.

``hasAccess(recordId, account)`` is true when ``account`` is not zero and is either the record's
uploader or holds an active grant. Exactly three events change that answer — ``ImageStored``
(sets the uploader), ``AccessGranted`` and ``AccessRevoked`` (set the grant state) — so replaying
them in chain order gives the same table the contract holds. Before every answer the mirror
compares the chain head with the block it last read and, when the head moved, reads the new
blocks' events first. An answer therefore reflects the chain as of that head check, as an
``eth_call`` at ``latest`` would, but costs a head check and a dict lookup instead of an EVM
run: on the embedded chain a ``hasAccess`` call takes milliseconds, the head check microseconds.

A revocation by anyone, through this process or by a direct transaction on the node, is seen at
the first decision after the block that holds it. A head whose ancestry changed (a reorg on a
chain without finality) throws the table away and rebuilds it from the block that deployed the
contract (saved beside its address when this installation deployed it; block 0 otherwise).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from scanseal._address import checksum
from scanseal.ledger import _abi
from scanseal.ledger._chain import Chain

_GRANT_ACTIVE: Final = 1
GRANT_REVOKED: Final = 2
"""``grantOf`` of a grant that was revoked (0: never granted, 1: active)."""
_ZERO: Final = "0x" + "00" * 20
_EVENTS: Final = ("ImageStored", "AccessGranted", "AccessRevoked")
_SPAN: Final = 10_000
"""Blocks per eth_getLogs query: public nodes cap the range a single query may cover."""


@dataclass(frozen=True)
class Head:
    """A block the mirror has read up to: its number and hash."""

    number: int
    hash: bytes


class AccessMirror:
    """hasAccess and grantOf answered from memory, in step with the chain."""

    def __init__(self, chain: Chain, contract: str, first_block: int = 0) -> None:
        self._chain = chain
        self._contract = contract
        self._first_block = first_block
        self._topics = ["0x" + _abi.event_topic(name).hex() for name in _EVENTS]
        self._lock = threading.Lock()
        self._head: Head | None = None
        self._uploaders: dict[bytes, str] = {}
        self._grants: dict[tuple[bytes, str], int] = {}

    def has_access(self, rid: bytes, account: str) -> bool:
        """The contract's ``hasAccess(rid, account)`` at the current head."""
        account = checksum(account)
        with self._lock:
            self._sync()
            if account == _ZERO:
                return False
            if self._uploaders.get(rid) == account:
                return True
            return self._grants.get((rid, account), 0) == _GRANT_ACTIVE

    def grant_of(self, rid: bytes, account: str) -> int:
        """The contract's ``grantOf``: 0 never granted, 1 active, 2 revoked."""
        account = checksum(account)
        with self._lock:
            self._sync()
            return self._grants.get((rid, account), 0)

    def _sync(self) -> None:
        number, block_hash = self._chain.head()
        known = self._head
        if known is not None and known.number == number and known.hash == block_hash:
            return
        if known is not None and (
            number < known.number or self._chain.block_hash(known.number) != known.hash
        ):
            known = None  # the chain we read is no longer canonical: start again
        if known is None:
            self._uploaders.clear()
            self._grants.clear()
        start = self._first_block if known is None else known.number + 1
        for low in range(start, number + 1, _SPAN):
            high = min(low + _SPAN - 1, number)
            logs = self._chain.logs(self._contract, self._topics, low, high)
            for log in sorted(logs, key=lambda item: (item["blockNumber"], item["logIndex"])):
                self._apply(log)
        self._head = Head(number, block_hash)

    def _apply(self, log: dict[str, Any]) -> None:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is None:
            return
        name, fields = decoded
        rid = bytes(fields["recordId"])
        if name == "ImageStored":
            self._uploaders[rid] = str(fields["uploader"])
        elif name == "AccessGranted":
            self._grants[(rid, str(fields["grantee"]))] = _GRANT_ACTIVE
        else:
            self._grants[(rid, str(fields["grantee"]))] = GRANT_REVOKED
