"""The embedded chain's reads below web3 answer what web3 answers, for what the ledger reads."""

from __future__ import annotations

from typing import Any

import pytest
from hexbytes import HexBytes

from scanseal.errors import AccessDenied
from scanseal.ledger import Ledger, LedgerConfig

from .conftest import Cast, new_cid, populate

_RECEIPT = ("status", "blockNumber", "blockHash", "gasUsed", "transactionHash", "contractAddress")
_LOG = ("address", "topics", "data", "logIndex", "blockNumber", "blockHash", "transactionHash")


def _fields(receipt: Any) -> dict[str, Any]:
    picked = {key: receipt[key] for key in _RECEIPT}
    picked["logs"] = [{key: log[key] for key in _LOG} for log in receipt["logs"]]
    return picked


def test_receipts_blocks_and_hashes_match_web3(tmp_path: Any, cast: Cast) -> None:
    with Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=cast.owner) as ledger:
        cid, hashes = populate(ledger, cast)
        stored = ledger.store_record(cast.uploader, new_cid(), *hashes)
        with pytest.raises(AccessDenied):  # a reverted transaction's receipt too
            ledger.grant(cast.stranger, cid, cast.grantee.address)
        chain, w3 = ledger.chain, ledger.chain.w3
        head = chain.head()[0]
        compared = 0
        for number in range(head + 1):
            block = w3.eth.get_block(number)
            assert chain.block_hash(number) == bytes(block["hash"])
            outline = (number, bytes(block["parentHash"]), len(block["transactions"]))
            assert chain.block_outline(bytes(block["hash"])) == outline
            for tx in block["transactions"]:
                text = "0x" + bytes(tx).hex()  # type: ignore[arg-type]
                assert _fields(chain.wait(text)) == _fields(w3.eth.get_transaction_receipt(tx))
                compared += 1
        assert compared == head  # the genesis block holds none, every other block one
        assert chain.block_hash(head + 1) is None
        assert chain.block_hash(-1) is None
        assert chain.block_outline(b"\x07" * 32) is None
        assert chain.wait(str(stored.tx_hash))["status"] == 1
        assert isinstance(chain.wait(str(stored.tx_hash))["logs"][0]["data"], HexBytes)
