"""Connections to an EVM: the embedded py-evm chain and any node over JSON-RPC.

Both sign locally with explicit nonces, so many transactions from one account can be in flight
at once and no key ever leaves the process. The embedded chain is py-evm in this process, its
database a scratch file (``_chaindb``); to survive a restart it journals every signed
transaction with its block timestamp and replays the journal on open, which rebuilds exactly
the same state (same transaction hashes, same timestamps, same contract addresses, same block
hashes).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from scanseal._json import parse_object
from scanseal.errors import IntegrityError, InvalidInput, LedgerUnavailable, NotFound
from scanseal.ledger._answers import malformed, refused, stale_nonce, unusable

_JOURNAL_VERSION = 1
_EMBEDDED_FUNDER_KEY = (1).to_bytes(32, "big")
"""eth-tester's first genesis account (private key 1): funds the embedded chain's actors."""

FUNDER_ADDRESS = Account.from_key(_EMBEDDED_FUNDER_KEY).address
"""The embedded chain's funder: also the sender of its read-only calls."""
_FUNDING = 10 * 10**18  # 10 ether: far more gas than any run here spends
_LOW_BALANCE = 10**18
_TIP = 1  # wei; local and permissioned chains need no real tip
_FEE_REFRESH = 256  # sends between base-fee refreshes

_log = logging.getLogger("scanseal.ledger")


class RevertError(Exception):
    """A call the contract refused; `data` is the ABI-encoded custom error (may be empty)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data.hex())
        self.data = data


class Chain:
    """What the ledger needs from an EVM: send signed transactions, read receipts and state."""

    def __init__(self, w3: Web3, funder: LocalAccount | None, timeout: float) -> None:
        self.w3 = w3
        self.timeout = timeout
        self._funder = funder
        self._lock = threading.RLock()
        self._nonces: dict[str, int] = {}
        self._funded: set[str] = set()
        self._sends = 0
        self._fees: dict[str, int] = {}
        self.mined: Callable[[dict[str, Any]], None] | None = None
        """Called with each receipt ``wait`` reads (reverted transactions' too): the access
        mirror takes the logs of the transactions sent here from them, not from the node."""
        try:
            self.chain_id: int = int(w3.eth.chain_id)
        except Exception as error:
            raise LedgerUnavailable(f"cannot reach the Ethereum node: {error}") from error

    # ------------------------------------------------------------ sending

    def send(self, account: LocalAccount, tx: dict[str, Any]) -> str:
        """Sign `tx` with `account` (nonce, fees, chain id filled in) and submit it.

        The next nonce of each account is kept here, not asked of the node per transaction. When
        the account was used elsewhere meanwhile (an administrator's transaction from the same
        key), the node refuses the kept nonce as too low, or as an underpriced replacement of
        the other transaction: the pending nonce is then read from the node again and the
        transaction signed and submitted once more, once. Any other refusal (no money for
        gas, an error answer, a malformed one) is LedgerUnavailable naming the account."""
        with self._lock:
            try:
                return self._send(account, tx)
            except Web3Exception as error:
                raise refused(error, account.address) from error

    def _send(self, account: LocalAccount, tx: dict[str, Any]) -> str:
        """send's work; the node's own exceptions are left for send to translate."""
        self.ensure_funded(account.address)
        full = dict(tx)
        full.setdefault("value", 0)
        full["chainId"] = self.chain_id
        full["nonce"] = self._next_nonce(account.address)
        full.update(self._fee_fields())
        try:
            tx_hash = self._sign_and_submit(account, full)
        except Exception as error:  # the kept nonce is dropped: resynchronise from the node
            if not stale_nonce(error):
                raise
            stale = full["nonce"]
            full["nonce"] = self._next_nonce(account.address)
            _log.warning("nonce %d of %s was used elsewhere; sending with nonce %d",
                         stale, account.address, full["nonce"])  # fmt: skip
            tx_hash = self._sign_and_submit(account, full)
        self._nonces[account.address] = full["nonce"] + 1
        return tx_hash

    def _sign_and_submit(self, account: LocalAccount, full: dict[str, Any]) -> str:
        """Submit; on any failure forget the kept nonce, so the next send asks the node."""
        try:
            return self._submit(bytes(account.sign_transaction(full).raw_transaction))
        except Exception:
            self._nonces.pop(account.address, None)
            raise

    def wait(self, tx_hash: str) -> dict[str, Any]:
        """The receipt of a submitted transaction; LedgerUnavailable if it is not mined in time."""
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while True:
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                receipt = None
            except Exception as error:
                raise LedgerUnavailable(f"cannot read receipt {tx_hash}: {error}") from error
            if receipt is not None:
                return self._received(dict(receipt))
            if time.monotonic() > deadline:
                raise LedgerUnavailable(f"transaction {tx_hash} not mined in {self.timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _received(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """A receipt ``wait`` read, after the ``mined`` hook has seen it."""
        if self.mined is not None:
            self.mined(receipt)
        return receipt

    def ensure_funded(self, address: str) -> None:
        """Top up an actor's gas money from the funder account, when there is one."""
        if self._funder is None or address in self._funded or address == self._funder.address:
            return
        if int(self.w3.eth.get_balance(address)) >= _LOW_BALANCE:  # type: ignore[arg-type]
            self._funded.add(address)
            return
        tx_hash = self.send(self._funder, {"to": address, "value": _FUNDING, "gas": 21000})
        if self.wait(tx_hash)["status"] != 1:
            raise LedgerUnavailable(f"could not fund {address}")
        self._funded.add(address)

    def call(
        self, to: str, data: bytes, sender: str | None = None, block: int | str = "latest"
    ) -> bytes:
        """Run a read-only call; RevertError carries the revert data when the contract refuses."""
        request: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender is not None:
            request["from"] = sender
        try:
            return bytes(self.w3.eth.call(request, block))  # type: ignore[arg-type]
        except ContractLogicError as error:
            raw = error.data
            revert = bytes.fromhex(raw[2:]) if isinstance(raw, str) and raw[:2] == "0x" else b""
            raise RevertError(revert) from error
        except (ConnectionError, OSError) as error:
            raise LedgerUnavailable(f"cannot reach the Ethereum node: {error}") from error
        except Web3Exception as error:  # an error answer that is not a revert, or garbage
            raise unusable(error, "run a call") from error

    def revert_data(self, tx: dict[str, Any], sender: str, block: int) -> bytes | None:
        """Re-run a failed transaction as a call on the state it saw, to learn why it failed."""
        try:
            self.call(str(tx["to"]), bytes(tx["data"]), sender, block)
        except RevertError as reverted:
            return reverted.data
        except Exception:  # a node that cannot replay the call still reports the failure
            return None
        return None

    def close(self) -> None:
        """Release the connection (the embedded chain flushes its journal)."""

    def head(self) -> tuple[int, bytes]:
        """Number and hash of the latest block."""
        block = self.read(lambda: self.w3.eth.get_block("latest"))
        return int(block["number"]), bytes(block["hash"])

    def block_hash(self, number: int) -> bytes | None:
        """Hash of canonical block ``number``, or None if there is none (yet)."""
        try:
            return bytes(self.read(lambda: self.w3.eth.get_block(number))["hash"])
        except LedgerUnavailable:
            raise
        except Exception:  # web3 raises BlockNotFound, eth-tester its own kind
            return None

    def block_outline(self, block_hash: bytes) -> tuple[int, bytes, int] | None:
        """Number, parent hash and transaction count of the block ``block_hash``, or None if
        the node knows no such block: enough to tell whether a mined receipt's logs are all
        of its block's logs and the block follows a given one."""
        block = self.read(lambda: self.w3.eth.get_block(HexBytes(block_hash)))
        if block is None:
            return None
        return int(block["number"]), bytes(block["parentHash"]), len(block["transactions"])

    def logs(
        self, address: str, topics: list[Any], low: int, high: int | str = "latest"
    ) -> list[dict[str, Any]]:
        """Logs of ``address`` matching eth_getLogs topic positions ``topics``, blocks low..high."""
        query = {"address": Web3.to_checksum_address(address), "fromBlock": low, "toBlock": high,
                 "topics": topics}  # fmt: skip
        return [dict(log) for log in self.read(lambda: self.w3.eth.get_logs(query))]  # type: ignore[arg-type]

    def read(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` (web3 reads on ``self.w3``); a node that is down, answers an error or
        answers garbage is LedgerUnavailable, one line, whatever the read."""
        try:
            return work()
        except (ConnectionError, OSError) as error:
            raise LedgerUnavailable(f"cannot reach the Ethereum node: {error}") from error
        except Web3Exception as error:
            raise unusable(error, "answer a read") from error

    # ------------------------------------------------------------ internals

    def _submit(self, raw: bytes) -> str:
        try:
            return "0x" + bytes(self.w3.eth.send_raw_transaction(raw)).hex()
        except (ConnectionError, OSError) as error:
            raise LedgerUnavailable(f"cannot reach the Ethereum node: {error}") from error

    def _next_nonce(self, address: str) -> int:
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = int(self.w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]
        return nonce

    def _fee_fields(self) -> dict[str, int]:
        if not self._fees or self._sends % _FEE_REFRESH == 0:
            block = self.w3.eth.get_block("latest")
            base = block.get("baseFeePerGas")
            if base is None:  # pre-London or gas-free permissioned chain
                self._fees = {"gasPrice": int(self.w3.eth.gas_price)}
            else:
                self._fees = {
                    "maxFeePerGas": 2 * int(base) + 10**9,
                    "maxPriorityFeePerGas": _TIP,
                }
        self._sends += 1
        return dict(self._fees)


class JsonRpcChain(Chain):
    """Any Ethereum node by URL (anvil in the tests; Besu, geth or Quorum in production)."""

    def __init__(self, url: str, funder: LocalAccount | None, timeout: float) -> None:
        super().__init__(Web3(_NodeProvider(url, timeout)), funder, timeout)


class _NodeProvider(HTTPProvider):
    """web3's HTTP provider, with every failure to talk to the node as LedgerUnavailable.

    Every web3 call goes through here (the ledger's own reads of logs and code too), so a node
    that is down, silent, not speaking JSON-RPC or answering results of the wrong shape
    gives one line and a 503, never a raw ``requests`` error. web3's own retries are off: it
    retries a read up to six times, each waiting the whole timeout, so a stopped node held a
    request for six timeouts; here one call waits at most ``timeout`` and the caller decides
    whether to try again.
    """

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, {"timeout": timeout}, exception_retry_configuration=None)
        self._timeout = timeout

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            answer = super().make_request(method, params)
            problem = malformed(method, answer)
            if problem is None:
                return answer
        except requests.Timeout:
            problem = f"no answer within {self._timeout:g} s"
        except requests.ConnectionError:
            problem = "connection refused or lost (node down?)"
        except OSError as error:  # requests' HTTPError and other transport failures
            problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        except ValueError:  # the reply is not JSON
            problem = "the answer is not JSON-RPC"
        raise LedgerUnavailable(f"Ethereum node {self.endpoint_uri}: {method}: {problem}")


class EmbeddedChain(Chain):
    """py-evm in this process, made durable by a journal of signed transactions.

    Each journal line holds one raw transaction, its hash and the timestamp of the block that
    mined it; the first line holds the genesis timestamp. Opening replays the lines in order
    with the same timestamps, so every receipt, event and address comes back as it was. A torn
    last line (a crash while writing) is dropped: that transaction was never acknowledged.
    """

    def __init__(self, state_dir: Path, timeout: float = 30.0, *, read_only: bool = False) -> None:
        from eth_tester import EthereumTester
        from web3 import EthereumTesterProvider

        from scanseal.ledger._chaindb import embedded_backend

        self._journal_path = state_dir / "journal.jsonl"
        self._read_only = read_only
        if read_only and not self._journal_path.is_file():
            raise NotFound(f"no embedded chain at {state_dir} (no journal.jsonl)")
        if not read_only:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lines = self._read_journal()
        genesis = lines[0]["timestamp"] if lines else int(time.time())
        self._evm, self._db = embedded_backend(state_dir if not read_only else None, genesis)
        self._tester = EthereumTester(self._evm)
        self._caller = ThreadPoolExecutor(1, thread_name_prefix="embedded-chain")
        provider = EthereumTesterProvider(self._tester)
        super().__init__(Web3(provider), Account.from_key(_EMBEDDED_FUNDER_KEY), timeout)
        self._replay(lines[1:])
        self._journal = -1
        if read_only:
            return
        self._journal = os.open(self._journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if not lines:
            self._write({"kind": "genesis", "version": _JOURNAL_VERSION, "timestamp": genesis})

    def _submit(self, raw: bytes) -> str:
        """Journal first, then apply: a transaction the journal cannot hold (a full or
        read-only disk) is never applied, so the chain in memory never runs ahead of the one a
        restart replays; a transaction py-evm refuses is taken out of the journal again."""
        if self._read_only:
            raise InvalidInput("this view of the embedded chain is read-only")
        header = self._evm.chain.header
        stamp = max(int(time.time()), header.timestamp)
        self._evm.chain.header = header.copy(timestamp=stamp)
        tx_hash = "0x" + keccak(raw).hex()
        mark = self._write({"kind": "tx", "raw": raw.hex(), "hash": tx_hash, "timestamp": stamp})
        try:
            applied = super()._submit(raw)
            if applied != tx_hash:
                raise IntegrityError(f"py-evm named transaction {tx_hash} as {applied}")
        except BaseException:
            self._cut(mark)
            raise
        return tx_hash

    def close(self) -> None:
        if self._journal >= 0:
            os.close(self._journal)
        self._caller.shutdown()
        self._db.close()

    def head(self) -> tuple[int, bytes]:
        """Straight from py-evm: the mirror asks before every access decision."""
        header = self._evm.chain.get_canonical_head()
        return int(header.block_number), bytes(header.hash)

    def wait(self, tx_hash: str) -> dict[str, Any]:
        """Straight from eth-tester (``_direct.receipt``): web3's formatting more than doubled
        the cost. A transaction not mined yet (manual mining) is waited for as on any node."""
        from scanseal.ledger import _direct  # eth-tester is imported with the embedded chain

        receipt = _direct.receipt(self._tester, tx_hash)
        return super().wait(tx_hash) if receipt is None else self._received(receipt)

    def block_hash(self, number: int) -> bytes | None:
        """Straight from py-evm (``_direct.canonical_hash``): the mirror's ancestry check."""
        from scanseal.ledger import _direct

        return _direct.canonical_hash(self._evm.chain, number)

    def block_outline(self, block_hash: bytes) -> tuple[int, bytes, int] | None:
        """Straight from py-evm (``_direct.outline``)."""
        from scanseal.ledger import _direct

        return _direct.outline(self._evm.chain, block_hash)

    def call(
        self, to: str, data: bytes, sender: str | None = None, block: int | str = "latest"
    ) -> bytes:
        """eth-tester keeps the raw revert data only below web3, so ask it directly, on the
        chain's own thread: py-evm leaves reference cycles (its VM state, a revert's frames),
        which would hold the caller's stack, a fetch's bundle too, until the next collection."""
        # eth-tester insists on a funded sender even for a read
        request = {"from": sender or FUNDER_ADDRESS, "to": to, "data": "0x" + data.hex()}
        done, result = self._caller.submit(self._isolated_call, request, block).result()
        if not done:
            raise RevertError(result)
        return bytes.fromhex(str(result).removeprefix("0x"))

    def _isolated_call(self, request: dict[str, Any], block: int | str) -> tuple[bool, Any]:
        """(True, the call's hex result) or (False, the revert data), on the chain's thread."""
        from eth_tester.exceptions import TransactionFailed

        try:
            return True, self._tester.call(request, block)
        except TransactionFailed as error:
            from scanseal.ledger import _direct

            return False, _direct.revert_data(error.args)

    def _write(self, line: dict[str, Any]) -> int:
        """Append one line durably; return the journal's length before it. A failed write is
        cut off again (a torn line would be dropped on open anyway)."""
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8")
        mark = os.lseek(self._journal, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._journal, view) :]
            os.fsync(self._journal)
        except OSError as error:
            self._cut(mark)
            raise LedgerUnavailable(
                f"cannot write the chain journal: {error.strerror or error}"
            ) from None
        return mark

    def _cut(self, mark: int) -> None:
        """Truncate the journal back to ``mark`` (best effort: a torn tail is dropped on open)."""
        try:
            os.ftruncate(self._journal, mark)
            os.fsync(self._journal)
        except OSError:
            pass

    def _read_journal(self) -> list[dict[str, Any]]:
        if not self._journal_path.exists():
            return []
        data = self._journal_path.read_bytes()
        lines: list[dict[str, Any]] = []
        good = 0
        for raw_line in data.splitlines(keepends=True):
            if not raw_line.endswith(b"\n"):
                break
            try:
                lines.append(parse_object(raw_line, f"{self._journal_path} line"))
            except InvalidInput:  # torn or unreadable: the journal ends here
                break
            good += len(raw_line)
        self._journal_read = good
        if good != len(data) and not self._read_only:
            with self._journal_path.open("r+b") as handle:
                handle.truncate(good)
        if lines and lines[0].get("kind") != "genesis":
            raise IntegrityError(f"{self._journal_path} does not start with a genesis line")
        return lines

    def follow(self) -> None:
        """A read-only view: replay what the writing process journalled since the last look.

        The writer appends whole lines and cuts a line again only when py-evm refused its
        transaction, which this replica refuses the same way: such a line is left for the
        next look (by then it is gone). A journal shorter than what was replayed cannot be
        followed: IntegrityError."""
        with self._journal_path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() < self._journal_read:
                raise IntegrityError(f"{self._journal_path} shrank under this read-only view")
            handle.seek(self._journal_read)
            fresh = handle.read()
        for raw_line in fresh.splitlines(keepends=True):
            if not raw_line.endswith(b"\n"):
                return
            try:
                self._replay([parse_object(raw_line, f"{self._journal_path} line")])
            except IntegrityError:
                raise
            except Exception:  # refused, or torn: the writer cuts it; look again later
                return
            self._journal_read += len(raw_line)

    def _replay(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            header = self._evm.chain.header
            self._evm.chain.header = header.copy(timestamp=int(line["timestamp"]))
            tx_hash = Chain._submit(self, bytes.fromhex(line["raw"]))
            if tx_hash != line["hash"]:
                raise IntegrityError(f"journal replay diverged at transaction {line['hash']}")
