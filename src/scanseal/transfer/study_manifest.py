"""The study manifest: one signed object that names every instance record of a study.

A study is sent as instances, each sealed, screened, registered and provable on its own. The
study manifest (docs/FORMAT.md §7) binds them together: the instances' record CIDs in ascending
order, an RFC 6962 Merkle root over their binary CIDs (``integrity.merkle``), a digest of the
Study Instance UID (not the UID itself: what a gateway or the ledger sees names no study), the
uploader and the time, signed by the uploader (EIP-191 over the canonical JSON without
``signature``). Anyone holding it checks that a record belongs to the study with an inclusion
proof of O(log n) hashes (:meth:`StudyManifest.proof`, :func:`verify_member`), and a recipient
who knows the study's UID checks that it is that study's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from scanseal._json import canonical_json, parse_object
from scanseal.crypto.signing import verify_signature
from scanseal.errors import IntegrityError, InvalidInput, ScanSealError
from scanseal.integrity import MerkleTree, leaf_hash, verify_inclusion
from scanseal.storage import CID

VERSION: Final = 1
STUDY_DOMAIN: Final = b"scanseal/study/v1"
"""Domain separation of the Study Instance UID digest."""
_KEYS: Final = ("created_at", "instances", "merkle_root", "scanseal_study", "signature",
                "study_uid_sha256", "uploader")  # fmt: skip


def study_uid_digest(study_uid: str) -> bytes:
    """SHA-256(``scanseal/study/v1`` ‖ UTF-8 of the Study Instance UID)."""
    return hashlib.sha256(STUDY_DOMAIN + study_uid.encode("utf-8")).digest()


def _leaf(record: str) -> bytes:
    try:
        return leaf_hash(CID.parse(record).to_bytes())
    except ScanSealError:
        raise InvalidInput(f"study manifest: {record!r} is not a record CID") from None


@dataclass(frozen=True)
class StudyManifest:
    """The signed list of a study's instance records (docs/FORMAT.md §7)."""

    study_uid_sha256: bytes
    instances: tuple[str, ...]
    merkle_root: bytes
    uploader_name: str
    uploader_address: str
    created_at: int
    signature: str = ""

    @classmethod
    def build(
        cls, study_uid: str, records: Sequence[str], uploader_name: str, uploader_address: str,
        created_at: int,
    ) -> StudyManifest:  # fmt: skip
        """The (unsigned) manifest of ``records``: sorted, each once, rooted."""
        ordered = tuple(sorted(set(records)))
        if not ordered:
            raise InvalidInput("a study manifest names at least one instance record")
        root = MerkleTree(_leaf(record) for record in ordered).root()
        return cls(study_uid_digest(study_uid), ordered, root, uploader_name, uploader_address,
                   created_at)  # fmt: skip

    def to_dict(self, *, signed: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scanseal_study": VERSION,
            "study_uid_sha256": self.study_uid_sha256.hex(),
            "instances": list(self.instances),
            "merkle_root": self.merkle_root.hex(),
            "uploader": {"name": self.uploader_name, "address": self.uploader_address},
            "created_at": self.created_at,
        }
        if signed:
            body["signature"] = self.signature
        return body

    def signed_bytes(self) -> bytes:
        """What the uploader signs: the canonical JSON of everything but the signature."""
        return canonical_json(self.to_dict(signed=False))

    def signed_by(self, sign: Callable[[bytes], str]) -> StudyManifest:
        return replace(self, signature=sign(self.signed_bytes()))

    def to_bytes(self) -> bytes:
        """The stored form: canonical JSON, signature included (its CID names the study)."""
        return canonical_json(self.to_dict())

    def verify(self, study_uid: str | None = None) -> None:
        """IntegrityError unless the uploader signed exactly this, the instances are sorted and
        unique, the root is theirs, and (given ``study_uid``) it is that study's manifest."""
        if not self.signature:
            raise IntegrityError("study manifest is not signed")
        verify_signature(self.signed_bytes(), self.signature, self.uploader_address)
        if list(self.instances) != sorted(set(self.instances)) or not self.instances:
            raise IntegrityError("study manifest: instances are not sorted, unique and present")
        if MerkleTree(_leaf(r) for r in self.instances).root() != self.merkle_root:
            raise IntegrityError("study manifest: the Merkle root is not its instances'")
        if study_uid is not None and study_uid_digest(study_uid) != self.study_uid_sha256:
            raise IntegrityError("study manifest is of another study")

    def proof(self, record: str) -> tuple[int, list[bytes]]:
        """``record``'s leaf index and inclusion proof; InvalidInput when it is not listed."""
        if record not in self.instances:
            raise InvalidInput(f"record {record} is not an instance of this study")
        index = self.instances.index(record)
        tree = MerkleTree(_leaf(r) for r in self.instances)
        return index, tree.inclusion_proof(index)

    @classmethod
    def from_bytes(cls, data: bytes) -> StudyManifest:
        """Parse the stored form strictly (exact keys and types); the signature is checked by
        :meth:`verify`."""
        top = parse_object(data, "study manifest")
        if sorted(top) != sorted(_KEYS) or top["scanseal_study"] != VERSION:
            raise InvalidInput(f"study manifest: keys must be exactly {', '.join(_KEYS)} "
                               f"and scanseal_study {VERSION}")  # fmt: skip
        uploader = top["uploader"]
        if not isinstance(uploader, dict) or sorted(uploader) != ["address", "name"]:
            raise InvalidInput("study manifest: uploader must hold name and address")
        instances = top["instances"]
        if not isinstance(instances, list):
            raise InvalidInput("study manifest: instances must be a list")
        texts = [uploader["name"], uploader["address"], top["signature"], *instances]
        if not all(isinstance(t, str) for t in texts):
            raise InvalidInput("study manifest: instances, names and signature must be text")
        if type(top["created_at"]) is not int:
            raise InvalidInput("study manifest: created_at must be an integer")
        digest, root = _hex32(top["study_uid_sha256"]), _hex32(top["merkle_root"])
        return cls(digest, tuple(instances), root, uploader["name"], uploader["address"],
                   top["created_at"], top["signature"])  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def verify_member(
    record: str, index: int, proof: Sequence[bytes], size: int, merkle_root: bytes
) -> None:
    """IntegrityError unless ``record`` is leaf ``index`` of a study of ``size`` instances whose
    manifest has ``merkle_root`` (what a recipient checks with the proof alone)."""
    verify_inclusion(_leaf(record), index, size, proof, merkle_root)


def _hex32(value: object) -> bytes:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        raise InvalidInput("study manifest: a digest must be 64 lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInput("study manifest: a digest must be 64 lowercase hex digits") from None
