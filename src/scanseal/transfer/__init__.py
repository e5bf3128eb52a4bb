"""The workflows: every operation on an image and on a record, in one layer.

Local, with no ledger: ``seal_file``, ``open_sealed``, ``verify_sealed`` (an envelope and its
signed manifest on disk; docs/FORMAT.md). For an upload: ``seal_for_upload`` seals for the
recipients and the uploader and names the envelope's CID without keeping it. On the ledger:
:class:`Records` registers, authorizes fetches, grants, revokes, audits and verifies records with
one operator account — the gateway (``scanseal.service``) runs it after authenticating a request;
``open_record`` and ``open_checked`` are the one verified-decrypt path of a fetched record.
``screen_verdict`` and ``flag_warning`` read the tamper screen's verdict back from a signed
manifest, for every place that shows it. A :class:`Registrar` is what a receiver
(``scanseal.dicom``) hands sealed uploads to.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scanseal.transfer.checked import LedgerHashes, open_checked
from scanseal.transfer.grants import Grant, check_same_payload, issue_grant, make_grant
from scanseal.transfer.local import (
    OpenedFile,
    Progress,
    ScreenPolicy,
    SealedFile,
    VerifyReport,
    check_seal_output,
    manifest_path_for,
    open_sealed,
    seal_file,
    verify_sealed,
)
from scanseal.transfer.manifest import Manifest
from scanseal.transfer.stored import fetch_sealed, publish_manifest
from scanseal.transfer.upload import seal_for_upload, with_self
from scanseal.transfer.verdict import ScreenVerdict, flag_warning, screen_verdict

if TYPE_CHECKING:
    from scanseal.transfer.records import (
        Records,
        Registrar,
        Registration,
        cid_bytes,
        grant_stored,
        open_record,
        signed_manifest,
        store_sealed,
    )

_ON_THE_LEDGER = {
    "Records", "Registrar", "Registration", "cid_bytes", "grant_stored", "open_record",
    "signed_manifest", "store_sealed",
}  # fmt: skip
"""Names from ``records``, loaded on first use: it needs the ledger (web3, py-evm), which local
sealing, opening and verifying never touch, and which costs a CLI command seconds to import."""


def __getattr__(name: str) -> Any:
    if name in _ON_THE_LEDGER:
        return getattr(importlib.import_module("scanseal.transfer.records"), name)
    raise AttributeError(f"module 'scanseal.transfer' has no attribute {name!r}")


__all__ = [
    "Grant",
    "LedgerHashes",
    "Manifest",
    "OpenedFile",
    "Progress",
    "Records",
    "Registrar",
    "Registration",
    "ScreenPolicy",
    "ScreenVerdict",
    "SealedFile",
    "VerifyReport",
    "check_same_payload",
    "check_seal_output",
    "cid_bytes",
    "fetch_sealed",
    "flag_warning",
    "grant_stored",
    "issue_grant",
    "make_grant",
    "manifest_path_for",
    "open_checked",
    "open_record",
    "open_sealed",
    "publish_manifest",
    "screen_verdict",
    "seal_file",
    "seal_for_upload",
    "signed_manifest",
    "store_sealed",
    "verify_sealed",
    "with_self",
]
