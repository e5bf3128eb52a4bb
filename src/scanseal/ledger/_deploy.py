"""Reaching and deploying ImageRegistry: the chain backend, the deployment transaction, and
the state file that remembers which address (and from which block) this build deployed."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from scanseal.errors import IntegrityError
from scanseal.ledger._artifact import load_artifact
from scanseal.ledger._chain import Chain, EmbeddedChain, JsonRpcChain
from scanseal.ledger.config import LedgerConfig

_DEPLOY_GAS = 3_000_000


def connect(config: LedgerConfig, *, read_only: bool = False) -> Chain:
    """The chain backend the configuration names: the embedded one (``read_only``: a replica
    of its journal) or a JSON-RPC node."""
    if config.backend == "embedded":
        return EmbeddedChain(Path(config.state_dir), config.timeout, read_only=read_only)
    funder = Account.from_key(config.funder_key) if config.funder_key else None
    assert config.url is not None
    return JsonRpcChain(config.url, funder, config.timeout)


def deploy(chain: Chain, deployer: LocalAccount) -> tuple[str, int]:
    """Deploy the committed ImageRegistry; its address and the block that mined it."""
    tx = {"data": bytes.fromhex(load_artifact().bytecode[2:]), "gas": _DEPLOY_GAS}
    receipt = chain.wait(chain.send(deployer, tx))
    if receipt["status"] != 1 or not receipt.get("contractAddress"):
        raise IntegrityError("deploying ImageRegistry failed")
    return str(receipt["contractAddress"]), int(receipt["blockNumber"])


def check_code(chain: Chain, address: str) -> None:
    """Refuse to talk to an address whose code is not the committed ImageRegistry."""
    code = bytes(chain.read(lambda: chain.w3.eth.get_code(to_checksum_address(address))))
    if code != bytes.fromhex(load_artifact().deployed_bytecode[2:]):
        raise IntegrityError(f"{address} does not hold the ImageRegistry bytecode of this build")


def _state_file(state_dir: Path, chain_id: int) -> Path:
    return Path(state_dir) / f"contract-{chain_id}.json"


def saved_address(state_dir: Path, chain_id: int) -> str | None:
    """The address deployed earlier on this chain from this state directory, if any."""
    path = _state_file(state_dir, chain_id)
    if not path.exists():
        return None
    return str(json.loads(path.read_text("utf-8"))["address"])


def save_address(state_dir: Path, chain_id: int, address: str, block: int) -> None:
    """Remember a deployment, so the next open finds the contract and where its events start."""
    path = _state_file(state_dir, chain_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    saved = {"address": address, "chain_id": chain_id, "block": block}
    path.write_text(json.dumps(saved) + "\n", "utf-8")


def deploy_block(state_dir: Path, chain: Chain, address: str) -> int:
    """The block that deployed `address`, where its events start (0 when not recorded)."""
    path = _state_file(state_dir, chain.chain_id)
    if not path.exists():
        return 0
    saved = json.loads(path.read_text("utf-8"))
    if to_checksum_address(saved["address"]) != to_checksum_address(address):
        return 0
    return int(saved.get("block", 0))
