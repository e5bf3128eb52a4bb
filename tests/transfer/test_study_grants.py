"""The grants a study's registration sends for the instances that deferred theirs, on the real
embedded chain: the study record for the recipients every instance names, the instance for the
others, nothing for a revoked account, a reservation for the rest, 256 pairs per transaction,
and nothing the second time."""

from __future__ import annotations

import io
import os
from pathlib import Path

from eth_account import Account

from scanseal.ledger import GrantState, Ledger, LedgerConfig
from scanseal.storage import EmbeddedStore, cid_of
from scanseal.transfer import Records
from scanseal.transfer.records import cid_bytes
from scanseal.transfer.study_records import send_grants, study_grants


def _cid() -> str:
    return cid_of(io.BytesIO(os.urandom(32)))  # a record of a batch: not stored on chain


def test_study_grants_cover_every_recipient_once_and_renew_no_revocation(tmp_path: Path) -> None:
    admin = Account.create()
    ledger = Ledger.open(LedgerConfig(state_dir=tmp_path / "chain"), deployer=admin)
    try:
        a, b, c = (Account.create().address for _ in range(3))
        for account in (a, b, c, admin.address):  # the operator too, as a gateway is
            ledger.register_identity(admin, account, bytes(12) + bytes.fromhex(account[2:]))
        records = Records(ledger, EmbeddedStore(tmp_path / "blocks"), admin)
        study, instances = _cid(), [_cid() for _ in range(301)]
        recipients_of = {record: [a, b] for record in instances}
        recipients_of[instances[0]] = [a, b, c]  # c: named by one instance only
        recipients_of.pop(instances[-1])  # reserved, though no study lists it here
        ledger.grant(admin, cid_bytes(instances[1]), a)
        ledger.revoke(admin, cid_bytes(instances[1]), a)  # the owner revoked a on one instance

        pairs = study_grants(records, study, recipients_of, reserve=instances)
        by_record: dict[bytes, list[str]] = {}
        for record, account in pairs:
            by_record.setdefault(record, []).append(account)
        assert by_record[cid_bytes(study)] == [b]  # a is not given what would reopen instance 1
        assert by_record[cid_bytes(instances[0])] == [a, c]
        assert cid_bytes(instances[1]) not in by_record  # a's grant reserved it; a stays revoked
        assert all(by_record[cid_bytes(r)] == [a] for r in instances[2:-1])
        lone = instances[-1]  # named by nobody: a reservation alone
        assert by_record[cid_bytes(lone)] == [records.address]
        assert len(pairs) == 1 + 2 + 298 + 1

        receipts = send_grants(records, pairs)
        assert len(receipts) == 2  # 256 pairs per grantAccessBatch
        assert study_grants(records, study, recipients_of, reserve=instances) == []
        assert ledger.grant_state(cid_bytes(instances[1]), a) == GrantState.REVOKED
        assert ledger.has_access(cid_bytes(study), b)
        assert not ledger.has_access(cid_bytes(study), a)

        other = _cid()  # another study over the same instances, b revoked on the first
        ledger.revoke(admin, cid_bytes(study), b)
        again = study_grants(records, other, recipients_of, closed={b})
        assert again == []  # a and c hold their instance grants already, b is closed
        assert study_grants(records, other, {instances[0]: [c]}) == [(cid_bytes(other), c)]
    finally:
        ledger.close()
