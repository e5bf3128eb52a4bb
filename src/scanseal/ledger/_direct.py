"""Reads of the embedded chain straight from eth-tester and py-evm, below web3.

web3's ``EthereumTesterProvider`` formats every request and every result through its middleware
stack, which on the embedded chain costs more than the read itself. The reads the ledger makes
per transaction go here instead (each function's docstring gives its CPU cost against web3's,
from ``python bench/chain_reads.py`` on the 2-core machine at a load average of 2.5). The
results have web3's keys and types for what the ledger uses, so the rest of the ledger cannot
tell the two apart (``tests/ledger/test_direct.py`` compares them).
"""

from __future__ import annotations

import ast
from typing import Any

from eth.exceptions import HeaderNotFound
from eth_tester.exceptions import TransactionNotFound
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes


def receipt(tester: Any, tx_hash: str) -> dict[str, Any] | None:
    """The receipt of ``tx_hash`` in web3's shape, or None if it is not mined: 330 µs, where
    ``w3.eth.get_transaction_receipt`` takes 740-820 µs for the same eth-tester call."""
    try:
        raw = tester.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None
    mined = {_camel(key): value for key, value in raw.items() if key != "logs"}
    for key in ("blockHash", "transactionHash"):
        mined[key] = HexBytes(mined[key])
    if mined.get("contractAddress"):
        mined["contractAddress"] = to_checksum_address(mined["contractAddress"])
    mined["logs"] = [_log(log) for log in raw["logs"]]
    return mined


def canonical_hash(chain: Any, number: int) -> bytes | None:
    """The hash of canonical block ``number``, or None: 7 µs from py-evm's canonical index,
    where web3's ``get_block`` formats the whole block for about 400 µs."""
    if number < 0:
        return None
    try:
        return bytes(chain.get_canonical_block_hash(number))
    except HeaderNotFound:
        return None


def outline(chain: Any, block_hash: bytes) -> tuple[int, bytes, int] | None:
    """Number, parent hash and transaction count of block ``block_hash``, or None: 50 µs,
    against 630 µs for web3's ``get_block``."""
    try:
        header = chain.get_block_header_by_hash(block_hash)
    except HeaderNotFound:
        return None
    count = len(chain.chaindb.get_block_transaction_hashes(header))
    return int(header.block_number), bytes(header.parent_hash), count


def revert_data(args: tuple[Any, ...]) -> bytes:
    """eth-tester passes revert data as bytes or as the repr() of bytes; accept both."""
    first = args[0] if args else None
    if isinstance(first, bytes | bytearray):
        return bytes(first)
    if isinstance(first, str) and first[:2] in ("b'", 'b"'):
        value = ast.literal_eval(first)  # a literal only: no code runs
        if isinstance(value, bytes):
            return value
    return b""


def _log(raw: dict[str, Any]) -> dict[str, Any]:
    log = {_camel(key): value for key, value in raw.items()}
    for key in ("blockHash", "transactionHash", "data"):
        log[key] = HexBytes(log[key])
    log["topics"] = [HexBytes(topic) for topic in raw["topics"]]
    return log


def _camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)
