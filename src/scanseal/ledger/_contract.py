"""ImageRegistry at one address: encoded calls, signed transactions and their receipts, views.

Every writer of the ledger goes through this one object, so a refused transaction is turned
into the same ScanSeal error whichever mode sent it.
"""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from scanseal.ledger import _abi
from scanseal.ledger._chain import Chain, RevertError
from scanseal.ledger._revert import error_from_revert
from scanseal.ledger.models import AnchorInfo, Receipt, RecordInput

_GAS = {"storeImage": 300_000, "anchorBatch": 400_000, "logAccess": 150_000,
        "logAccessVia": 160_000}  # fmt: skip
_DEFAULT_GAS = 150_000
_GAS_PER_BATCH_GRANT = 80_000
"""grantAccessBatch: a first grant on a batch record costs about 74,000 (docs/LEDGER.md)."""
_STORE_TAG = keccak(text="ScanSeal ImageRegistry storeImage")
_DIGEST_TYPES = ["bytes32", "uint256", "address", "bytes32", "bytes32", "bytes32", "bytes32"]


class Contract:
    """The deployed ImageRegistry on `chain` at `address`."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.failures = 0
        """Transactions that could not be sent or settled (refused, reverted, no answer)."""

    def send(
        self, account: LocalAccount, function: str, args: list[Any]
    ) -> tuple[dict[str, Any], str]:
        """Submit a call of `function` signed by `account`; the transaction and its hash."""
        data = _abi.encode_call(function, *args)
        gas = _GAS.get(function, _DEFAULT_GAS)
        if function == "grantAccessBatch":
            gas = _DEFAULT_GAS + _GAS_PER_BATCH_GRANT * len(args[0])
        tx = {"to": self.address, "data": data, "gas": gas}
        try:
            return tx, self.chain.send(account, tx)
        except Exception:  # refused by the node, unreachable, or an error it did not foresee
            self.failures += 1
            raise

    def settle(
        self, account: LocalAccount, tx: dict[str, Any], tx_hash: str, rid: bytes, action: str
    ) -> Receipt:
        """Wait for a sent transaction; a revert raises the error its data names."""
        return self._settle(account, tx, tx_hash, rid, action)[0]

    def _settle(
        self, account: LocalAccount, tx: dict[str, Any], tx_hash: str, rid: bytes, action: str
    ) -> tuple[Receipt, dict[str, Any]]:
        """settle's work: the Receipt and the node's receipt it was made from."""
        try:
            receipt = self.chain.wait(tx_hash)
        except Exception:
            self.failures += 1
            raise
        if receipt["status"] != 1:
            self.failures += 1
            data = self.chain.revert_data(tx, account.address, int(receipt["blockNumber"]) - 1)
            raise error_from_revert(data, action)
        number, gas = int(receipt["blockNumber"]), int(receipt["gasUsed"])
        return Receipt(rid, "per-record", tx_hash, number, gas), receipt

    def transact(
        self, account: LocalAccount, function: str, rid: bytes, args: list[Any], action: str
    ) -> Receipt:
        """Send and settle one call; `rid`, when given, is its first argument."""
        return self.transact_events(account, function, rid, args, action)[0]

    def transact_events(
        self, account: LocalAccount, function: str, rid: bytes, args: list[Any], action: str
    ) -> tuple[Receipt, list[tuple[str, dict[str, Any]]]]:
        """``transact``, with the ImageRegistry events the transaction emitted, decoded from
        the receipt it settled with (not read a second time)."""
        call_args = [rid, *args] if rid else args
        tx, tx_hash = self.send(account, function, call_args)
        receipt, mined = self._settle(account, tx, tx_hash, rid, action)
        return receipt, _events(mined["logs"])

    def record_digest(self, item: RecordInput) -> bytes:
        """The contract's ``recordDigest``: what an uploader signs to store ``item`` here."""
        values = [_STORE_TAG, self.chain.chain_id, self.address, keccak(item.cid)]
        values += [item.image_hash, item.h3, item.pixel_digest]
        return keccak(abi_encode(_DIGEST_TYPES, values))

    def store_args(self, uploader: LocalAccount, item: RecordInput) -> list[Any]:
        """storeImage's arguments for ``item``, signed by ``uploader`` (EIP-191), so that the
        record is the uploader's whoever gets the transaction mined first."""
        message = encode_defunct(primitive=self.record_digest(item))
        signature = bytes(uploader.sign_message(message).signature)
        return [item.cid, item.image_hash, item.h3, item.pixel_digest, signature]

    def receipt_events(self, receipt: Receipt) -> list[tuple[str, dict[str, Any]]]:
        """The ImageRegistry events a mined transaction emitted, decoded."""
        assert receipt.tx_hash is not None
        return _events(self.chain.wait(receipt.tx_hash)["logs"])

    def view(self, function: str, *args: Any) -> tuple[Any, ...]:
        """Call a view function; a revert raises the error its data names."""
        try:
            raw = self.chain.call(self.address, _abi.encode_call(function, *args))
        except RevertError as reverted:
            raise error_from_revert(reverted.data, function) from None
        return _abi.decode_output(function, raw)

    def get_anchor(self, operator: str, index: int) -> AnchorInfo:
        """Anchor `index` of `operator`, read from the contract."""
        ((root, size, stamp),) = self.view("getAnchor", operator, index)
        return AnchorInfo(to_checksum_address(operator), index, bytes(root), int(size), int(stamp))

    def anchor_count(self, operator: str) -> int:
        """How many roots `operator` has anchored."""
        return int(self.view("anchorCount", operator)[0])


def _events(logs: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ImageRegistry events among a receipt's logs, decoded."""
    decoded = [_abi.decode_log(list(log["topics"]), bytes(log["data"])) for log in logs]
    return [event for event in decoded if event is not None]
