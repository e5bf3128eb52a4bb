"""The study manifest (docs/FORMAT.md §7): the committed vector, and every change refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from scanseal.crypto.signing import sign_message
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.transfer.study_manifest import StudyManifest, verify_member
from vectors import make_study_vectors as make

VECTOR = json.loads((Path(__file__).parents[1] / "vectors" / "study_manifest.json").read_text())
ACCOUNT = Account.from_key(bytes.fromhex(VECTOR["uploader_private_key"]))


def _sign(manifest: StudyManifest) -> StudyManifest:
    return manifest.signed_by(lambda message: sign_message(ACCOUNT, message))


def test_the_vector_is_reproduced_and_committed():
    assert make.vector() == VECTOR


def test_the_stored_vector_parses_verifies_and_proves_its_members():
    manifest = StudyManifest.from_bytes(VECTOR["stored"].encode())
    manifest.verify(VECTOR["study_uid"])
    assert manifest.to_bytes().decode() == VECTOR["stored"]
    assert manifest.merkle_root.hex() == VECTOR["merkle_root"]
    assert list(manifest.instances) == sorted(VECTOR["records_in_send_order"])
    proof = VECTOR["proof_of_instance_1"]
    path = [bytes.fromhex(p) for p in proof["path"]]
    record = manifest.instances[proof["index"]]
    verify_member(record, proof["index"], path, len(manifest.instances), manifest.merkle_root)
    for index, other in enumerate(manifest.instances):
        if other != record:
            with pytest.raises(IntegrityError):
                verify_member(other, proof["index"], path, 3, manifest.merkle_root)
            at, own = manifest.proof(other)
            assert at == index
            verify_member(other, at, own, 3, manifest.merkle_root)


def test_every_change_is_refused():
    manifest = StudyManifest.from_bytes(VECTOR["stored"].encode())
    a, b, c = manifest.instances
    dropped = replace(manifest, instances=(a, b))  # one instance less, signature kept
    reordered = replace(manifest, instances=(b, a, c))
    other_root = replace(manifest, merkle_root=bytes(32))
    for altered in (dropped, reordered, other_root):
        with pytest.raises(IntegrityError):
            altered.verify()
    with pytest.raises(IntegrityError, match="another study"):
        manifest.verify("1.2.3.4")
    forged = _sign(StudyManifest.build("1.2.3", [a, b], "ito", ACCOUNT.address, 1))
    mallory = Account.create()
    stolen = replace(forged, uploader_address=mallory.address)  # claims another uploader
    with pytest.raises(IntegrityError):
        stolen.verify()
    resigned_root = _sign(replace(forged, merkle_root=bytes(32)))  # signed, but not its root
    with pytest.raises(IntegrityError, match="Merkle root"):
        resigned_root.verify()
    with pytest.raises(InvalidInput, match="not an instance"):
        forged.proof(c)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.pop("merkle_root"),
        lambda d: d.update(extra=1),
        lambda d: d.update(instances="bafk"),
        lambda d: d.update(created_at="1795000000"),
        lambda d: d.update(merkle_root="AB" * 32),
        lambda d: d.update(scanseal_study=2),
        lambda d: d.update(uploader={"name": "ito"}),
    ],
)
def test_malformed_stored_forms_are_refused(edit):
    body = json.loads(VECTOR["stored"])
    edit(body)
    with pytest.raises(InvalidInput):
        StudyManifest.from_bytes(json.dumps(body).encode())


def test_a_study_manifest_names_at_least_one_record_and_only_cids():
    with pytest.raises(InvalidInput):
        StudyManifest.build("1.2.3", [], "ito", ACCOUNT.address, 1)
    with pytest.raises(InvalidInput, match="not a record CID"):
        StudyManifest.build("1.2.3", ["../x"], "ito", ACCOUNT.address, 1)


def test_format_md_carries_the_vector():
    text = (Path(__file__).parents[2] / "docs" / "FORMAT.md").read_text("utf-8")
    section = text[text.index("## 7. Study manifest") :]
    shown = [VECTOR[k] for k in ("study_uid_sha256", "merkle_root", "stored_cid")]
    shown += [*VECTOR["proof_of_instance_1"]["path"], VECTOR["uploader_private_key"]]
    for value in shown:
        assert value in section
    assert VECTOR["signature"][2:68] in section
    assert VECTOR["signature"][68:] in section
