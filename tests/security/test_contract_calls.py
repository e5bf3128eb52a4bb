"""Direct calls to the ImageRegistry by accounts without the role: every one reverts.

The gateway is not the only way to the contract: anyone can send it a transaction. Here a
stranger, a registered member who is not an uploader, and a grantee call every function that
changes policy or records, straight on the chain; each must revert (AccessDenied) and
leave the state as it was. It runs on the embedded EVM and on a real anvil node (`make_config`
in tests/conftest.py); the results row adds up both. tests/ledger/test_contract.py checks every
function for every role with the precise error; this is the attack-suite view of the same rule.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from eth_account import Account

from engine_support import ConfigFactory
from gateway_harness import RESULTS
from scanseal.errors import AccessDenied
from scanseal.ledger import AccessType, Ledger, Reason, _abi, record_id

ROW = "direct contract calls without the role"


def test_unauthorized_contract_calls_revert(make_config: ConfigFactory) -> None:
    owner, member, grantee, stranger, uploader = (Account.create() for _ in range(5))
    ledger = Ledger.open(make_config(), deployer=owner)
    try:
        for account in (member, grantee, uploader):
            ledger.register_identity(owner, account.address, os.urandom(32))
        ledger.authorize_uploader(owner, uploader.address)
        cid = b"\x01\x55" + os.urandom(34)
        ledger.store_record(uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        ledger.grant(uploader, cid, grantee.address)
        heir = Account.create()  # a pending ownership proposal nobody below may accept
        ledger.transfer_ownership(owner, heir.address)

        def anchor(account) -> Callable[[], object]:
            data = _abi.encode_call("anchorBatch", os.urandom(32), 1, [])
            return lambda: ledger._contract.settle(  # a raw transaction, on purpose
                account, *_send(ledger, account, data), record_id(cid), "anchor batch"
            )

        def new_cid() -> bytes:
            return b"\x01\x55" + os.urandom(34)

        def calls(w) -> list[Callable[[], object]]:
            hashes = (os.urandom(32), os.urandom(32), os.urandom(32))
            return [
                lambda: ledger.set_admin(w, w.address),
                lambda: ledger.transfer_ownership(w, w.address),
                lambda: ledger.accept_ownership(w),
                lambda: ledger.register_identity(w, stranger.address, os.urandom(32)),
                lambda: ledger.authorize_uploader(w, w.address),
                lambda: ledger.deauthorize_uploader(w, uploader.address),
                lambda: ledger.store_record(w, new_cid(), *hashes),
                lambda: ledger.grant(w, cid, member.address),
                lambda: ledger.revoke(w, cid, grantee.address),
                lambda: ledger.set_controller(w, cid, w.address),
                lambda: ledger.log_access(w, cid, uploader.address, AccessType.VIEW, Reason.NONE),
                anchor(w),
            ]

        attempts = [call for who in (stranger, member, grantee) for call in calls(who)]
        reverted = 0
        for call in attempts:
            with pytest.raises(AccessDenied):
                call()
            reverted += 1
        assert (ledger.owner(), ledger.pending_owner()) == (owner.address, heir.address)
        assert ledger.has_access(cid, grantee.address)
        assert not ledger.has_access(cid, member.address)
        assert not ledger.is_admin(stranger.address)
    finally:
        ledger.close()
    earlier, blocked, _, _ = RESULTS.get(ROW, (0, 0, 0, ""))
    RESULTS[ROW] = (earlier + len(attempts), blocked + reverted, 0, "succeeded")
    assert reverted == len(attempts) == 36


def _send(ledger: Ledger, account, data: bytes) -> tuple[dict, str]:
    tx = {"to": ledger.address, "data": data, "gas": 400_000}
    return tx, ledger.chain.send(account, tx)
