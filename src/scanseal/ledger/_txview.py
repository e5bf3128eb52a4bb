"""One transaction of the chain as a person reads it: who sent it where, whether it succeeded,
and, for the ImageRegistry, the function it called and the events it emitted, decoded with the
committed ABI (``scanseal ledger tx``)."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from scanseal.errors import InvalidInput, NotFound
from scanseal.ledger import _abi
from scanseal.ledger._evidence import ChainReader


def describe_transaction(reader: ChainReader, tx_hash: str) -> dict[str, Any]:
    """The transaction ``tx_hash`` and its receipt, decoded; NotFound if it is not mined."""
    text = tx_hash.strip().lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(f"{tx_hash!r} is not a transaction hash (0x and 64 hex digits)")
    w3 = reader.chain.w3
    try:
        sent = w3.eth.get_transaction(HexBytes("0x" + text))
        receipt = w3.eth.get_transaction_receipt(HexBytes("0x" + text))
    except TransactionNotFound:
        raise NotFound(f"no transaction 0x{text} on chain {reader.chain.chain_id}") from None
    to = receipt.get("to")
    ours = to is not None and to_checksum_address(to) == reader.contract
    call = _abi.decode_call(bytes(sent["input"])) if ours else None
    events = []
    for log in receipt["logs"]:
        address = to_checksum_address(log["address"])
        decoded = (
            _abi.decode_log(list(log["topics"]), bytes(log["data"]))
            if address == reader.contract
            else None
        )
        events.append(
            {"address": address, "event": decoded[0] if decoded else None,
             "fields": plain(decoded[1]) if decoded else None}
        )  # fmt: skip
    number = int(receipt["blockNumber"])
    block = w3.eth.get_block(number)
    return {
        "hash": "0x" + text,
        "chain_id": reader.chain.chain_id,
        "block": number,
        "block_hash": "0x" + bytes(receipt["blockHash"]).hex(),
        "timestamp": int(block["timestamp"]),
        "from": to_checksum_address(sent["from"]),
        "to": to_checksum_address(to) if to else None,
        "contract_created": receipt.get("contractAddress"),
        "to_image_registry": ours,
        "status": "success" if int(receipt["status"]) == 1 else "failed",
        "value": int(sent["value"]),
        "gas_limit": int(sent["gas"]),
        "gas_used": int(receipt["gasUsed"]),
        "call": {"function": call[0], "args": plain(call[1])} if call else None,
        "events": events,
    }


def plain(value: Any) -> Any:
    """``value`` with bytes as 0x-hex and tuples as lists, ready for JSON."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
