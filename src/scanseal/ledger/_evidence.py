"""Evidence anyone can check: a batched record's proof file and its check against the chain.

``export_proof`` writes what a verifier needs (the entry, its RFC 6962 inclusion path, the
anchor it leads to and the transaction that anchored it) into one JSON object, the proof file
of docs/LEDGER.md. ``verify_evidence`` checks such a file against a chain read only through
its JSON-RPC methods, trusting nothing in the file: the contract is the verifier's own, and
every anchor field is read back from the chain. Each check passed is reported as one line; the
first that fails raises IntegrityError naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_hex_address, to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from scanseal.errors import (
    IntegrityError,
    InvalidInput,
    LedgerUnavailable,
    NotFound,
    ScanSealError,
)
from scanseal.ledger import _abi, _deploy
from scanseal.ledger._batch import Entry
from scanseal.ledger._chain import Chain, EmbeddedChain, JsonRpcChain
from scanseal.ledger._contract import Contract
from scanseal.ledger.config import LedgerConfig
from scanseal.ledger.core import Ledger, check_proof
from scanseal.ledger.models import BatchProof, record_id

PROOF_FORMAT = "scanseal-inclusion-proof/1"
"""The ``format`` member of every proof file this build writes and reads."""

Report = Callable[[str], None]


@dataclass(frozen=True)
class ProofFile:
    """A batched record's inclusion proof with the anchor transaction it leads to."""

    record: bytes
    chain_id: int
    contract: str
    proof: BatchProof
    anchor_tx: str
    anchor_block: int
    anchor_block_hash: bytes

    def to_json(self) -> dict[str, Any]:
        """The proof file (docs/LEDGER.md, "Proof files")."""
        return {
            "format": PROOF_FORMAT,
            "record": "0x" + self.record.hex(),
            "chain_id": self.chain_id,
            "contract": self.contract,
            "proof": self.proof.to_json(),
            "anchor": {
                "tx_hash": self.anchor_tx,
                "block_number": self.anchor_block,
                "block_hash": "0x" + self.anchor_block_hash.hex(),
            },
        }

    @classmethod
    def from_json(cls, raw: Any) -> ProofFile:
        """Parse a proof file; InvalidInput naming what is missing or malformed."""
        if not isinstance(raw, dict) or raw.get("format") != PROOF_FORMAT:
            raise InvalidInput(f"not a proof file (format must be {PROOF_FORMAT!r})")
        try:
            anchor = raw["anchor"]
            proof = BatchProof.from_json(raw["proof"])
            parsed = cls(
                _hex(raw["record"]),
                _integer(raw["chain_id"]),
                _address(raw["contract"]),
                proof,
                "0x" + _hex(anchor["tx_hash"], 32).hex(),
                _integer(anchor["block_number"]),
                _hex(anchor["block_hash"], 32),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"malformed proof file: {error!r}") from None
        if not is_hex_address(proof.operator) or any(len(n) != 32 for n in proof.path):
            raise InvalidInput("malformed proof file: bad operator or path hash")
        return parsed


@dataclass
class ChainReader:
    """A chain seen only through its read methods, and the ImageRegistry the reader trusts."""

    chain: Chain
    contract: str

    def close(self) -> None:
        """Release the connection."""
        self.chain.close()

    def check_code(self) -> None:
        """Refuse a contract whose code is not this build's ImageRegistry (IntegrityError)."""
        _deploy.check_code(self.chain, self.contract)


def check_anchor(reader: ChainReader, proof: BatchProof) -> None:
    """That the reader's contract stores ``proof``'s root and size as anchor
    ``proof.anchor_index`` of its operator: what :func:`verify_evidence` checks of a proof
    file, for any batched entry (an access as much as a record), once :func:`check_proof`
    held. IntegrityError when it does not match; LedgerUnavailable when the chain does not
    answer. An embedded chain's read-only view first reads what its writer journalled since."""
    if isinstance(reader.chain, EmbeddedChain):
        reader.chain.follow()
    _check_anchor(reader, proof)


def open_reader(
    config: LedgerConfig, rpc: str | None = None, contract: str | None = None
) -> ChainReader:
    """The configured chain (the embedded one as a read-only replica of its journal, so it
    can be read while ``scanseal serve`` runs), or the node at ``rpc``; the contract is
    ``contract``, else the configured or deployed one."""
    chain: Chain
    if rpc is not None:
        chain = JsonRpcChain(rpc, None, config.timeout)
    else:
        chain = _deploy.connect(config, read_only=True)
    address = contract or (
        None if rpc else config.contract or _deploy.saved_address(config.state_dir, chain.chain_id)
    )
    if address is None:
        chain.close()
        raise InvalidInput("no ImageRegistry to check against: give --contract or a config")
    return ChainReader(chain, _address(address))


def export_record_proof(config: LedgerConfig, cid: bytes) -> ProofFile:
    """The proof file of record ``cid`` from the configured operator's batched log, read
    beside a running gateway (the embedded chain as a read-only replica)."""
    if config.mode != "batched":
        raise InvalidInput('inclusion proofs exist in batched mode only ([ledger] mode "batched")')
    with Ledger.open(config, read_only=True) as ledger:
        return export_proof(ledger, cid)


def export_proof(ledger: Ledger, cid: bytes) -> ProofFile:
    """The proof file of the batched record ``cid``, against the latest anchored root."""
    receipt = ledger.record_receipt(cid)
    if receipt is None or receipt.log_index is None:
        raise NotFound(f"record 0x{cid.hex()} is not in this batched log")
    proof = ledger.prove(receipt.log_index)
    first = _deploy.deploy_block(ledger._config.state_dir, ledger.chain, ledger.address)
    found = _anchor_log(ledger.chain, ledger.address, proof, first)
    if found is None:
        raise NotFound(f"no BatchAnchored event for anchor #{proof.anchor_index}")
    return ProofFile(
        cid,
        ledger.chain.chain_id,
        ledger.address,
        proof,
        "0x" + bytes(found["transactionHash"]).hex(),
        int(found["blockNumber"]),
        bytes(found["blockHash"]),
    )


def verify_evidence(reader: ChainReader, cid: bytes, file: ProofFile, report: Report) -> Entry:
    """Check ``file`` proves record ``cid`` under a root the reader's contract anchored, in
    a successful transaction of a canonical block; report each check, raise on the first
    that fails."""
    proof = file.proof
    entry = _check_record(cid, file)
    report(f"record     0x{cid.hex()} is entry #{proof.index} of operator {proof.operator}")
    try:
        check_proof(proof)
    except IntegrityError as error:
        raise IntegrityError(f"inclusion proof: {error.reason}") from None
    report(
        f"inclusion  RFC 6962 path of {len(proof.path)} hashes leads from the entry to root "
        f"0x{proof.root.hex()} of size {proof.size}"
    )
    _check_contract(reader, file)
    report(f"contract   {reader.contract} holds the ImageRegistry code on chain {file.chain_id}")
    _check_anchor(reader, proof)
    report(f"anchor     the contract stores that root and size as anchor #{proof.anchor_index}")
    block = _check_transaction(reader, file)
    report(
        f"anchor tx  {file.anchor_tx}: succeeded, sent by the operator to the contract, its "
        f"BatchAnchored event carries the root and size, in canonical block {block}"
    )
    return entry


def _check_record(cid: bytes, file: ProofFile) -> Entry:
    entry = Entry.decode(file.proof.entry)
    if entry.kind != "record" or entry.record_id != record_id(cid) or entry.cid != cid:
        claimed = f"record 0x{entry.cid.hex()}" if entry.kind == "record" else "an access entry"
        raise IntegrityError(f"record: the proof is for {claimed}, not for record 0x{cid.hex()}")
    return entry


def _check_contract(reader: ChainReader, file: ProofFile) -> None:
    if file.chain_id != reader.chain.chain_id:
        raise IntegrityError(
            f"chain: the proof is for chain {file.chain_id}, this is chain {reader.chain.chain_id}"
        )
    if to_checksum_address(file.contract) != reader.contract:
        raise IntegrityError(
            f"contract: the proof names contract {file.contract}, not {reader.contract}"
        )
    reader.check_code()


def _check_anchor(reader: ChainReader, proof: BatchProof) -> None:
    try:
        anchor = Contract(reader.chain, reader.contract).get_anchor(
            proof.operator, proof.anchor_index
        )
    except LedgerUnavailable:
        raise  # a chain that does not answer says nothing about the anchor
    except ScanSealError:
        anchor = None
    if anchor is None or (anchor.root, anchor.size) != (proof.root, proof.size):
        raise IntegrityError(
            f"anchor: root 0x{proof.root.hex()} of size {proof.size} was never anchored as "
            f"anchor #{proof.anchor_index} of operator {proof.operator}"
        )


def _check_transaction(reader: ChainReader, file: ProofFile) -> int:
    """The anchor transaction: mined, succeeded, the operator's call to the contract, with the
    event for this anchor, in the canonical block the file names. Returns that block."""
    w3, tx = reader.chain.w3, file.anchor_tx
    try:
        receipt = w3.eth.get_transaction_receipt(HexBytes(tx))
        sent = w3.eth.get_transaction(HexBytes(tx))
    except TransactionNotFound:
        raise IntegrityError(f"anchor tx: {tx} is not a transaction of this chain") from None
    if int(receipt["status"]) != 1:
        raise IntegrityError(f"anchor tx: {tx} failed (status {receipt['status']})")
    to = receipt.get("to")
    if to is None or to_checksum_address(to) != reader.contract:
        raise IntegrityError(f"anchor tx: {tx} is not a call of the contract (to {to})")
    if to_checksum_address(sent["from"]) != to_checksum_address(file.proof.operator):
        raise IntegrityError(f"anchor tx: {tx} was sent by {sent['from']}, not the operator")
    logs = [dict(log) for log in receipt["logs"]]
    if not any(_is_anchor_event(log, reader.contract, file.proof) for log in logs):
        raise IntegrityError(f"anchor tx: {tx} emitted no BatchAnchored event for this root")
    number, block_hash = int(receipt["blockNumber"]), bytes(receipt["blockHash"])
    canonical = reader.chain.block_hash(number)
    if canonical != block_hash or (number, block_hash) != (
        file.anchor_block,
        file.anchor_block_hash,
    ):
        raise IntegrityError(f"anchor tx: {tx} is not in canonical block {file.anchor_block}")
    return number


def _is_anchor_event(log: dict[str, Any], contract: str, proof: BatchProof) -> bool:
    if to_checksum_address(log["address"]) != contract:
        return False
    decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
    if decoded is None or decoded[0] != "BatchAnchored":
        return False
    fields = decoded[1]
    return bool(
        fields["operator"] == to_checksum_address(proof.operator)
        and fields["index"] == proof.anchor_index
        and bytes(fields["root"]) == proof.root
        and fields["size"] == proof.size
    )


def _anchor_log(
    chain: Chain, contract: str, proof: BatchProof, first: int
) -> dict[str, Any] | None:
    topic = "0x" + _abi.event_topic("BatchAnchored").hex()
    for log in chain.logs(contract, [[topic]], first, chain.head()[0]):
        if _is_anchor_event(log, contract, proof):
            return log
    return None


def _hex(text: object, length: int | None = None) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ValueError(f"{text!r} is not 0x-hex")
    value = bytes.fromhex(text[2:])
    if length is not None and len(value) != length:
        raise ValueError(f"{text!r} is not {length} bytes")
    return value


def _integer(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


def _address(text: object) -> str:
    if not isinstance(text, str) or not is_hex_address(text):
        raise InvalidInput(f"{text!r} is not a 0x address")
    return to_checksum_address(text)
