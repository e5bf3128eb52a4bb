"""A batched entry's inclusion proof checked as ``scanseal proof verify`` checks one: the path
recomputed from the leaf to the root here (``ledger.check_proof``), the leaf this record's, and
the root compared with the one the contract anchored on chain (``ledger.check_anchor``).

The chain is the one of the user's own configuration (its ``[ledger]`` section: the embedded
chain read as a read-only replica of its journal, or a JSON-RPC node), never the gateway's word,
and it must be the contract the gateway signs for. When it cannot be read, a proof that
recomputes says "anchor not checked: <reason>" instead of holding: a root a gateway made up
recomputes as well as a real one. Anchors never change, so each one found is remembered; a
chain that failed is tried again after ``RETRY_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from scanseal.errors import IntegrityError, ScanSealError
from scanseal.ledger import (
    BatchProof,
    ChainReader,
    LedgerConfig,
    check_anchor,
    check_proof,
    open_reader,
    record_id,
)
from scanseal.storage import CID

RETRY_SECONDS: Final = 30.0
NOT_CHECKED: Final = "anchor not checked"


@dataclass
class Anchors:
    """The user's chain, opened on first use, and the anchors already found on it.
    ``config`` None: no configuration to read a chain from; ``contract``: the gateway's."""

    config: LedgerConfig | None
    contract: str
    _reader: ChainReader | None = None
    _failed: tuple[float, str] | None = None
    _found: set[tuple[str, int, bytes, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, record: str, raw: Any) -> str:
        """One line on the entry's proof: "holds: …", "anchor not checked: <reason>" or
        "FAILED: …" (it does not match)."""
        try:
            proof = BatchProof.from_json(raw)
            entry = check_proof(proof)
        except (ScanSealError, KeyError, TypeError, ValueError) as error:
            return f"FAILED: the proof does not recompute to its root: {error}"
        if entry.record_id != record_id(CID.parse(record).to_bytes()):
            return "FAILED: the proof's leaf is another record's"
        where = f"leaf {proof.index} of {proof.size} under root 0x{proof.root.hex()[:16]}…"
        with self._lock:
            problem = self._anchored(proof)
        if problem is None:
            return f"holds: {where}, anchored on chain as anchor #{proof.anchor_index}"
        if problem.startswith(NOT_CHECKED):
            return f"{problem} ({where} recomputes)"
        return f"FAILED: {problem}"

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _anchored(self, proof: BatchProof) -> str | None:
        """None when the chain anchored the proof's root; else why not, or why unknown."""
        key = (proof.operator.lower(), proof.anchor_index, proof.root, proof.size)
        if key in self._found:
            return None
        reader = self._open()
        if isinstance(reader, str):
            return reader
        try:
            check_anchor(reader, proof)
        except IntegrityError as error:
            return f"it does not match the root anchored on chain: {error.reason}"
        except ScanSealError as error:
            self._fail(error.reason)
            return f"{NOT_CHECKED}: {error.reason}"
        self._found.add(key)
        return None

    def _open(self) -> ChainReader | str:
        """The reader, or the "anchor not checked" line saying why there is none."""
        if self._reader is not None:
            return self._reader
        if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_SECONDS:
            return f"{NOT_CHECKED}: {self._failed[1]}"
        if self.config is None:
            return f"{NOT_CHECKED}: no [ledger] configuration to read the chain from"
        try:
            reader = open_reader(self.config)
            reader.check_code()
        except ScanSealError as error:
            self._fail(error.reason)
            return f"{NOT_CHECKED}: {error.reason}"
        if reader.contract.lower() != self.contract.lower():
            reader.close()
            reason = f"the gateway signs for contract {self.contract}, your [ledger] reads "
            self._fail(reason + reader.contract)
            return f"{NOT_CHECKED}: {reason}{reader.contract}"
        self._reader, self._failed = reader, None
        return reader

    def _fail(self, reason: str) -> None:
        self._failed = (time.monotonic(), reason)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
