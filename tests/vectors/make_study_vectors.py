"""Regenerate tests/vectors/study_manifest.json, the study manifest vector of docs/FORMAT.md §7.

Run by hand (``python tests/vectors/make_study_vectors.py``) and commit the output; the tests
check the committed values, so a change to the format cannot pass silently. Everything is
deterministic: a fixed uploader key (EIP-191 signatures are RFC 6979 deterministic), three
record CIDs of fixed bytes, a fixed study UID and time.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from eth_account import Account

from scanseal.crypto.signing import sign_message
from scanseal.storage import cid_of
from scanseal.transfer.study_manifest import StudyManifest, study_uid_digest

OUT = Path(__file__).with_name("study_manifest.json")
KEY = bytes(range(1, 33))
STUDY = "1.2.826.0.1.3680043.8.498.1"
CREATED_AT = 1795000000


def vector() -> dict[str, Any]:
    account = Account.from_key(KEY)
    records = [cid_of(io.BytesIO(f"instance {n}".encode())) for n in range(3)]
    manifest = StudyManifest.build(STUDY, records, "ito", account.address, CREATED_AT)
    signed = manifest.signed_by(lambda message: sign_message(account, message))
    index, proof = signed.proof(signed.instances[1])
    return {
        "uploader_private_key": KEY.hex(),
        "uploader_address": account.address,
        "study_uid": STUDY,
        "study_uid_sha256": study_uid_digest(STUDY).hex(),
        "records_in_send_order": records,
        "created_at": CREATED_AT,
        "signed_bytes": signed.signed_bytes().decode(),
        "merkle_root": signed.merkle_root.hex(),
        "signature": signed.signature,
        "stored": signed.to_bytes().decode(),
        "stored_cid": cid_of(io.BytesIO(signed.to_bytes())),
        "proof_of_instance_1": {"index": index, "path": [p.hex() for p in proof]},
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(vector(), indent=2) + "\n", "utf-8")
    print(json.dumps(vector(), indent=2))
