"""The shape of a JSON-RPC node's results, checked before web3 reads them.

web3 checks the envelope of an answer (``result`` or ``error``), not what the result holds: a
block that is a string, a balance that is an object or a log list that is a number then fails
deep in web3's formatters or in the ledger with a TypeError or KeyError, an HTTP 500. A proxy in
front of a node, or a broken node, answers exactly that. Each method the ledger uses is checked
here, so such an answer is LedgerUnavailable (503, exit 5) with one line naming the method.
A node's error answers (a refused transaction, a failed read) become the same one line, in the
node's own words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from scanseal.errors import LedgerUnavailable

_HEX = re.compile(r"0x[0-9a-fA-F]*\Z")
_STALE_NONCE = ("nonce too low", "replacement transaction underpriced")
"""What nodes (geth, anvil, reth) answer for a nonce another transaction already took."""
_NO_FUNDS = ("insufficient funds", "funds for gas")
"""What nodes answer for a transaction its account cannot pay for."""


def _hex(value: Any) -> bool:
    return isinstance(value, str) and _HEX.match(value) is not None


def _object(*keys: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, dict) and all(key in value for key in keys)

    return check


def _or_null(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _logs(value: Any) -> bool:
    fields = _object("topics", "data", "blockNumber", "transactionHash", "logIndex")
    return isinstance(value, list) and all(fields(log) for log in value)


_BLOCK = _or_null(_object("number", "hash", "timestamp"))
_SHAPES: dict[str, Callable[[Any], bool]] = {
    "eth_chainId": _hex,
    "eth_blockNumber": _hex,
    "eth_gasPrice": _hex,
    "eth_getBalance": _hex,
    "eth_getTransactionCount": _hex,
    "eth_getCode": _hex,
    "eth_call": _hex,
    "eth_sendRawTransaction": _hex,
    "eth_getBlockByNumber": _BLOCK,
    "eth_getBlockByHash": _BLOCK,
    "eth_getTransactionReceipt": _or_null(_object("status", "blockNumber", "gasUsed", "logs")),
    "eth_getLogs": _logs,
}


def malformed(method: str, answer: Any) -> str | None:
    """Why ``answer`` (a decoded JSON-RPC reply to ``method``) cannot be used, or None.

    Error replies are left to web3 (reverts and refusals carry meaning); a reply that is not an
    object, or has neither a result nor an error, or a result of the wrong shape, is named."""
    if not isinstance(answer, dict):
        return "the answer is not a JSON-RPC object"
    if "error" in answer:
        return None
    if "result" not in answer:
        return "the answer has neither a result nor an error"
    check = _SHAPES.get(method)
    if check is not None and not check(answer["result"]):
        return "the result is not of the kind this method returns"
    return None


def stale_nonce(error: Exception) -> bool:
    """Whether a refused submission says its nonce was taken (not any other failure)."""
    text = str(error).lower()
    return any(reason in text for reason in _STALE_NONCE)


def _node_message(error: Exception) -> str:
    """The node's own words for a JSON-RPC error, on one line."""
    detail: Any = error.args[0] if error.args else error
    answer = getattr(error, "rpc_response", None)  # web3's Web3RPCError keeps the reply
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        detail = answer["error"].get("message", detail)
    text = " ".join(str(detail).split())
    return text or type(error).__name__


def refused(error: Exception, address: str) -> LedgerUnavailable:
    """A node's refusal of a transaction from ``address`` as the one-line "ledger down" error:
    the gateway answers 503 and the CLI exits 5, naming the account and what to do."""
    words = _node_message(error)
    if any(reason in words.lower() for reason in _NO_FUNDS):
        return LedgerUnavailable(
            f"ledger account {address} cannot pay for gas ({words}): send it ether on the "
            "chain (or raise its balance), then retry"
        )
    return LedgerUnavailable(f"the Ethereum node refused a transaction from {address}: {words}")


def unusable(error: Exception, what: str) -> LedgerUnavailable:
    """A node's error answer (or a malformed one) to a read, as "ledger down"."""
    return LedgerUnavailable(f"the Ethereum node could not {what}: {_node_message(error)}")
