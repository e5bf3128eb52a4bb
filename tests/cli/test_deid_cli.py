"""`scanseal deid-key`, `deid` and `reid`: files out match the PS3.15 profile, come back with key
and token, and every mistake is one line with nothing written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag

from cli_support import one_error_line
from scanseal.dicom import DeidKey, deidentify, reidentify
from scanseal.dicom.deid import applied_options
from scanseal.dicom.deid_files import encode, load_key
from scanseal.integrity.pixels import pixel_digest

FILES = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small.dcm")]


def elements(path: Path) -> dict[str, object]:
    return {k: v for k, v in pydicom.dcmread(path).to_json_dict().items() if not k.endswith("0000")}


@pytest.fixture
def key(home: Path, run) -> Path:
    path = home / "deid.key"
    assert run("deid-key", str(path)).code == 0
    assert path.stat().st_mode & 0o777 == 0o600
    return path


def test_deid_then_reid_round_trip(home: Path, run, key: Path) -> None:
    out = home / "out"
    result = run("deid", *map(str, FILES), "-o", str(out), "--key", str(key), "--keep", "dates")
    assert result.code == 0, result.err
    written = sorted(out.glob("*.dcm"))
    assert len(written) == 2
    for original in FILES:
        source = pydicom.dcmread(original)
        (match,) = [p for p in written if pixel_digest(p) == pixel_digest(original)]
        ds = pydicom.dcmread(match)
        assert ds.PatientIdentityRemoved == "YES"
        assert applied_options(ds) == ["113100", "113107"]
        assert str(source.PatientName) not in match.read_bytes().decode("latin-1")
        assert ds.SOPInstanceUID != source.SOPInstanceUID
        assert ds.StudyDate != source.StudyDate  # shifted, not kept
        token = home / "deid-tokens" / "out" / f"{match.stem}.token"
        back = home / f"back-{match.name}"
        result = run("reid", str(match), "--token", str(token), "--key", str(key), "-o", str(back))
        assert result.code == 0, result.err
        assert elements(back) == elements(original)


# reid is exact on these: SourceApplicationEntityTitle in the file meta (CT_small), a
# MediaStorageSOPInstanceUID that differs from the SOPInstanceUID (rtplan, rtdose), big endian,
# deflate, implicit VR, an SR content tree, DS values written with trailing zeros ("5.000000"),
# undefined-length sequences, retired group lengths (693_UNCR).
EXACT = [Path(str(get_testdata_file(n))) for n in (
    "CT_small.dcm", "rtplan.dcm", "rtdose.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm",
    "MR_small_implicit.dcm", "test-SR.dcm", "waveform_ecg.dcm", "emri_small.dcm", "693_UNCR.dcm",
)]  # fmt: skip


def encoded(element: DataElement) -> bytes:
    """One element, nested items included, as explicit VR little endian bytes."""
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = False, True
    write_data_element(out, element)
    return bytes(out.getvalue())


def exact_elements(ds: Dataset) -> dict[BaseTag, bytes]:
    """Every element of the file meta and the data set, each encoded, except the retired group
    lengths (gggg,0000) of groups above 0002: PS3.5 §7.2 retired them and pydicom never writes
    them, so no file pydicom writes can carry them back."""
    found = {e.tag: encoded(e) for e in ds.file_meta}
    found.update({e.tag: encoded(e) for e in ds if e.tag.element != 0})
    return found


def test_reid_restores_the_original_exactly_file_meta_included(home: Path, run, key: Path):
    for path in EXACT:  # one batch each: two of them share a SOP Instance UID
        out = home / f"out-{path.stem}"
        allow = ["--allow-burned-in"]  # image_dfl.dcm is a secondary capture
        assert run("deid", str(path), "-o", str(out), "--key", str(key), *allow).code == 0
        (shared,) = out.glob("*.dcm")
        meta = pydicom.dcmread(shared).file_meta
        assert "SourceApplicationEntityTitle" not in meta, path.name
        assert meta.MediaStorageSOPInstanceUID == pydicom.dcmread(shared).SOPInstanceUID
        back = home / f"back-{path.name}"
        token = home / "deid-tokens" / out.name / f"{shared.stem}.token"
        result = run("reid", str(shared), "--token", str(token), "--key", str(key), "-o", str(back))
        assert result.code == 0, result.err
        original, restored = pydicom.dcmread(path), pydicom.dcmread(back)
        assert exact_elements(restored) == exact_elements(original), path.name
        assert restored.preamble == original.preamble
    assert (
        pydicom.dcmread(get_testdata_file("rtplan.dcm")).file_meta.MediaStorageSOPInstanceUID
        != pydicom.dcmread(get_testdata_file("rtplan.dcm")).SOPInstanceUID
    )  # the case restored


def test_the_library_writes_what_the_cli_writes_and_both_reid_exactly(
    home: Path, run, key: Path
) -> None:
    """``deidentify`` seals a version-2 token and gives a file meta of its own, so its file is
    the CLI's byte for byte, and either token restores the original exactly through
    ``reidentify`` and through ``scanseal reid``."""
    secret = load_key(key)
    for path in (EXACT[0], EXACT[1], EXACT[3]):  # AE title; differing media UID; big endian
        original = pydicom.dcmread(path)
        result = deidentify(original, secret)
        assert result.token.startswith(b"SSDI2"), path.name
        assert "SourceApplicationEntityTitle" not in result.dataset.file_meta, path.name
        assert result.dataset.file_meta.MediaStorageSOPInstanceUID == result.dataset.SOPInstanceUID
        out = home / f"cli-{path.stem}"
        assert run("deid", str(path), "-o", str(out), "--key", str(key)).code == 0
        (cli_file,) = out.glob("*.dcm")
        assert encode(result.dataset) == cli_file.read_bytes(), path.name
        restored = reidentify(result.dataset, result.token, secret)
        back = home / f"back-{path.name}"
        back.write_bytes(encode(restored, as_restored=True))
        assert exact_elements(pydicom.dcmread(back)) == exact_elements(original), path.name
        token = home / f"{path.stem}.token"
        token.write_bytes(result.token)
        back = home / f"cli-back-{path.name}"
        outcome = run("reid", str(cli_file), "--token", str(token), "--key", str(key),
                      "-o", str(back))  # fmt: skip
        assert outcome.code == 0, outcome.err
        assert exact_elements(pydicom.dcmread(back)) == exact_elements(original), path.name


def version_1_token(original: Dataset, instance: str, secret: DeidKey) -> bytes:
    """A token as releases before version 2 wrote it: the original's non-pixel elements as
    DICOM JSON, AES-256-GCM under the token key, bound to the new SOP Instance UID."""
    header = Dataset()
    for element in original:
        if element.keyword != "PixelData":
            header[element.tag] = element
    nonce, aad = os.urandom(12), b"SSDI1" + instance.encode()
    sealed = AESGCM(secret._token_key()).encrypt(nonce, header.to_json().encode(), aad)
    return b"SSDI1" + nonce + sealed


def test_a_version_1_token_is_still_read(home: Path, run, key: Path) -> None:
    """Tokens written before version 2 (DICOM JSON, no file meta) still re-identify: the values
    DICOM JSON carries, under a file meta of our own (no SourceApplicationEntityTitle)."""
    original = pydicom.dcmread(FILES[0])
    assert original.file_meta.SourceApplicationEntityTitle  # CT_small carries one
    result = deidentify(original, load_key(key))
    shared, token, back = home / "shared.dcm", home / "v1.token", home / "back.dcm"
    result.dataset.save_as(shared, enforce_file_format=True)
    token.write_bytes(version_1_token(original, str(result.dataset.SOPInstanceUID), load_key(key)))
    outcome = run("reid", str(shared), "--token", str(token), "--key", str(key), "-o", str(back))
    assert outcome.code == 0, outcome.err
    assert elements(back) == elements(FILES[0])
    restored = pydicom.dcmread(back)
    assert "SourceApplicationEntityTitle" not in restored.file_meta
    assert restored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID


def test_the_same_key_maps_a_patient_the_same_way(home: Path, run, key: Path) -> None:
    for name in ("a", "b"):
        assert run("deid", str(FILES[0]), "-o", str(home / name), "--key", str(key)).code == 0
    (a,), (b,) = (list((home / n).glob("*.dcm")) for n in ("a", "b"))
    assert pydicom.dcmread(a).PatientID == pydicom.dcmread(b).PatientID
    assert a.name == b.name  # the keyed SOP Instance UID


def test_wrong_key_and_foreign_token_are_refused(home: Path, run, key: Path) -> None:
    out = home / "out"
    assert run("deid", *map(str, FILES), "-o", str(out), "--key", str(key)).code == 0
    first, second = sorted(out.glob("*.dcm"))
    other = home / "other.key"
    assert run("deid-key", str(other)).code == 0
    tokens = home / "deid-tokens" / "out"
    attempts = {
        "wrong key": (first, tokens / f"{first.stem}.token", other),
        "foreign token": (first, tokens / f"{second.stem}.token", key),
    }
    for what, (file, token, secret) in attempts.items():
        target = home / "restored.dcm"
        result = run("reid", str(file), "--token", str(token), "--key", str(secret),
                     "-o", str(target))  # fmt: skip
        assert result.code == 4, what
        assert "sender's key and this instance's token" in one_error_line(result)
        assert not target.exists(), what
    not_a_token = home / "junk.token"
    not_a_token.write_bytes(b"junk")
    result = run("reid", str(first), "--token", str(not_a_token), "--key", str(key),
                 "-o", str(home / "r.dcm"))  # fmt: skip
    assert result.code == 2
    assert "not a ScanSeal re-identification token" in one_error_line(result)


def test_bad_inputs_are_one_line_and_write_nothing(home: Path, run, key: Path) -> None:
    not_dicom = home / "notes.dcm"
    not_dicom.write_text("this is not a DICOM file")
    out = home / "out"
    result = run("deid", str(FILES[0]), str(not_dicom), "-o", str(out), "--key", str(key))
    assert result.code == 2
    assert "notes.dcm is not a DICOM file" in one_error_line(result)
    assert not out.exists()  # the good file was not written either
    bad_key = home / "bad.key"
    bad_key.write_text("00" * 16)
    result = run("deid", str(FILES[0]), "-o", str(out), "--key", str(bad_key))
    assert result.code == 2
    assert "is not a de-identification key" in one_error_line(result)
    result = run("deid", str(FILES[0]), "-o", str(out), "--key", str(key), "--keep", "names")
    assert result.code == 2
    assert "--keep takes dates, patient, device, uids" in one_error_line(result)
    before = key.read_bytes()
    result = run("deid-key", str(key))
    assert result.code == 2
    assert "never overwritten" in one_error_line(result)
    assert key.read_bytes() == before
    assert not out.exists()


def without(path: Path, home: Path, keyword: str) -> Path:
    """A copy of ``path`` whose data set lacks ``keyword`` (the file meta keeps its UIDs)."""
    ds = pydicom.dcmread(path)
    delattr(ds, keyword)
    copy = home / f"no-{keyword}.dcm"
    ds.save_as(copy)
    return copy


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial" in p.name)


def test_a_batch_is_checked_before_anything_is_written(home: Path, run, key: Path) -> None:
    """A data set without SOPInstanceUID late in the batch used to crash with a traceback
    after the files before it were written."""
    batch = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "MR_small.dcm",
             "rtplan.dcm", "reportsi.dcm", "liver.dcm")]  # fmt: skip
    broken = without(Path(str(get_testdata_file("SC_rgb.dcm"))), home, "SOPInstanceUID")
    out = home / "out"
    result = run("deid", *map(str, [*batch, broken]), "-o", str(out), "--key", str(key))
    assert result.code == 2
    assert "no-SOPInstanceUID.dcm has no SOPInstanceUID" in one_error_line(result)
    assert not out.exists()
    assert leftovers(home) == []
    no_class = without(batch[0], home, "SOPClassUID")
    result = run("deid", str(batch[1]), str(no_class), "-o", str(out), "--key", str(key))
    assert result.code == 2
    assert "no-SOPClassUID.dcm has no SOPClassUID" in one_error_line(result)
    assert not out.exists()


def test_two_inputs_with_one_sop_instance_uid_are_refused(home: Path, run, key: Path) -> None:
    """They would de-identify to one name, and one token would silently replace the other."""
    first = Path(str(get_testdata_file("MR_small.dcm")))
    second = Path(str(get_testdata_file("MR_small_implicit.dcm")))  # same SOP Instance UID
    out = home / "out"
    result = run("deid", str(FILES[0]), str(first), str(second), "-o", str(out), "--key", str(key))
    assert result.code == 2
    line = one_error_line(result)
    assert f"{first} and {second} have the same SOP Instance UID" in line
    assert not out.exists()


def test_a_destination_that_is_a_file_is_one_line(home: Path, run, key: Path) -> None:
    target = home / "out"
    target.write_text("not a directory")
    result = run("deid", str(FILES[0]), "-o", str(target), "--key", str(key))
    assert result.code == 2
    assert f"{target} exists and is not a directory" in one_error_line(result)
    tokens = home / "tokens"
    tokens.write_text("")
    result = run("deid", str(FILES[0]), "-o", str(home / "o"), "--tokens", str(tokens),
                 "--key", str(key))  # fmt: skip
    assert result.code == 2
    assert f"{tokens} exists and is not a directory" in one_error_line(result)
    assert not (home / "o").exists()
    below_a_file = target / "out"  # its parent is a file: cannot be created
    result = run("deid", str(FILES[0]), "-o", str(below_a_file), "--key", str(key))
    assert result.code == 2
    assert f"cannot write {below_a_file}" in one_error_line(result)


def test_a_failure_while_de_identifying_leaves_nothing(home: Path, run, key: Path, monkeypatch):
    """Past the checks, a failure in the third file discards the two staged before it."""
    from scanseal.dicom import deid_files

    real, calls = deid_files.deidentify, []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("cannot encode this value\nsecond line")
        return real(*args, **kwargs)

    monkeypatch.setattr(deid_files, "deidentify", failing)
    batch = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "rtplan.dcm", "liver.dcm")]
    out = home / "out"
    result = run("deid", *map(str, batch), "-o", str(out), "--key", str(key))
    assert result.code == 2
    assert "liver.dcm cannot be de-identified: cannot encode this value" in one_error_line(result)
    assert not out.exists()
    assert leftovers(home) == []


KILLED_RUN = """
import os, signal, sys
from scanseal.dicom import deid_files
from scanseal.cli import main
real, staged = deid_files._Stage.write, []
def write(self, relative, data, mode=None):
    real(self, relative, data, mode)
    staged.append(relative)
    if len(staged) == int(os.environ["KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)
deid_files._Stage.write = write
sys.argv = ["scanseal", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new-directory", "existing-directory"])
def test_a_killed_run_leaves_no_partial_output_under_the_final_names(
    home: Path, run, key: Path, existing: bool
) -> None:
    batch = [Path(str(get_testdata_file(n))) for n in ("CT_small.dcm", "rtplan.dcm", "liver.dcm")]
    out = home / "out"
    if existing:
        out.mkdir()
        (out / "earlier.dcm").write_bytes(b"an earlier result")
    command = [sys.executable, "-c", KILLED_RUN, "deid", *map(str, batch), "-o", str(out),
               "--key", str(key)]  # fmt: skip
    env = dict(os.environ, KILL_AFTER="3", PYTHONPATH=os.pathsep.join(sys.path))
    killed = subprocess.run(command, env=env, capture_output=True, check=False, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["earlier.dcm"]
    else:
        assert not out.exists()
    tokens = home / "deid-tokens"
    assert not (tokens / "out").exists()
    (stale,) = leftovers(tokens)  # the hidden staging directory, never under a final name
    assert list((tokens / stale).rglob("*.token")), "the killed run had staged a token"
    live = tokens / f".out.partial-{os.getpid()}-0123abcd"  # a run still writing: left alone
    live.mkdir()
    result = run("deid", *map(str, batch), "-o", str(out), "--key", str(key))
    assert result.code == 0, result.err
    assert leftovers(tokens) == [live.name]  # the killed run's staged tokens are gone
    assert leftovers(home) == []
    assert len(list(out.glob("*.dcm"))) == 3 + existing
    assert len(list((tokens / "out").glob("*.token"))) == 3
    assert (tokens / "out").stat().st_mode & 0o777 == 0o700
    assert tokens.stat().st_mode & 0o777 == 0o700


def test_an_element_that_does_not_decode_is_found_before_writing(home: Path, run, key: Path):
    """pydicom decodes values lazily: a malformed one must stop the batch at the check, not
    halfway through writing it."""
    ds = pydicom.dcmread(FILES[0])
    ds.SoftwareVersions = "x"
    broken = home / "broken.dcm"
    ds.save_as(broken)
    data = bytearray(broken.read_bytes())
    at = data.find(b"\x18\x00\x20\x10LO")  # (0018,1020) LO "x " becomes FD of 2 bytes
    data[at + 4 : at + 6] = b"FD"
    broken.write_bytes(bytes(data))
    out = home / "out"
    result = run("deid", str(FILES[1]), str(broken), "-o", str(out), "--key", str(key))
    assert result.code == 2
    assert "broken.dcm has a malformed element" in one_error_line(result)
    assert not out.exists()


def test_tokens_stay_outside_the_output_folder(home: Path, run, key: Path) -> None:
    """OUTPUT is what a user zips and sends: by default the tokens go under $SCANSEAL_HOME,
    and a --tokens directory inside OUTPUT is refused with nothing written."""
    out = home / "share" / "study"
    result = run("deid", *map(str, FILES), "-o", str(out), "--key", str(key))
    assert result.code == 0, result.err
    assert sorted(p.suffix for p in out.rglob("*")) == [".dcm", ".dcm"]  # nothing else to leak
    tokens = home / "deid-tokens" / "study"
    assert len(list(tokens.glob("*.token"))) == 2
    for line in result.out.splitlines():
        assert f"token {tokens}/" in line
    for inside in (out / "tokens", out, out / "a" / ".." / "b"):
        again = run("deid", str(FILES[0]), "-o", str(out), "--tokens", str(inside),
                    "--key", str(key))  # fmt: skip
        assert again.code == 2
        line = one_error_line(again)
        assert f"tokens {inside} would be inside the output {out}" in line
    other = home / "elsewhere"
    result = run("deid", str(FILES[0]), "-o", str(home / "o2"), "--tokens", str(other),
                 "--key", str(key))  # fmt: skip
    assert result.code == 0, result.err
    assert len(list(other.glob("*.token"))) == 1
    assert sorted(p.suffix for p in out.rglob("*")) == [".dcm", ".dcm"]


def with_burned_in(path: Path, home: Path, value: str | None, name: str) -> Path:
    """A copy of ``path`` whose BurnedInAnnotation is ``value`` (None: absent)."""
    ds = pydicom.dcmread(path)
    if value is None:
        ds.pop("BurnedInAnnotation", None)
    else:
        ds.BurnedInAnnotation = value
    copy = home / name
    ds.save_as(copy)
    return copy


US = Path(str(get_testdata_file("US1_UNCR.dcm")))  # no BurnedInAnnotation
SC = Path(str(get_testdata_file("SC_rgb.dcm")))  # Secondary Capture, Modality OT, none either


def test_pixels_that_may_show_text_are_refused_unless_allowed(home: Path, run, key: Path):
    """ScanSeal does not de-identify pixels (PS3.15 E.1.1 leaves them to the user): YES, or no
    BurnedInAnnotation on an ultrasound or secondary capture, is one line and nothing written."""
    assert "BurnedInAnnotation" not in pydicom.dcmread(US)
    assert "BurnedInAnnotation" not in pydicom.dcmread(SC)
    ct_yes = with_burned_in(FILES[0], home, "YES", "ct-yes.dcm")
    refused = {
        US: "US1_UNCR.dcm: an ultrasound image with no BurnedInAnnotation (0028,0301) may hold "
        "burned-in text; de-identifying pixels is the user's task (PS3.15 E.1.1)",
        SC: "SC_rgb.dcm: a secondary capture image with no BurnedInAnnotation (0028,0301) may "
        "hold burned-in text",
        ct_yes: "ct-yes.dcm: BurnedInAnnotation (0028,0301) is YES: its pixels show text",
    }
    out = home / "out"
    for path, reason in refused.items():
        result = run("deid", str(FILES[1]), str(path), "-o", str(out), "--key", str(key))
        assert result.code == 2, path.name
        line = one_error_line(result)
        assert reason in line, line
        assert line.endswith("check the image, then --allow-burned-in")
        assert not out.exists()
        assert not (home / "deid-tokens" / "out").exists()
    us_no = with_burned_in(US, home, "NO", "us-no.dcm")
    result = run("deid", str(us_no), "-o", str(home / "fine"), "--key", str(key))
    assert result.code == 0, result.err
    assert result.err == ""
    allowed = run("deid", str(US), str(ct_yes), "-o", str(out), "--key", str(key),
                  "--allow-burned-in")  # fmt: skip
    assert allowed.code == 0, allowed.err
    assert len(list(out.glob("*.dcm"))) == 2
    warnings = allowed.err.splitlines()
    assert len(warnings) == 2
    assert warnings[0].startswith(f"warning: {US}: an ultrasound image with no Burned")
    assert warnings[1].startswith(f"warning: {ct_yes}: BurnedInAnnotation (0028,0301) is YES")
    assert all(w.endswith("its pixels are unchanged (--allow-burned-in)") for w in warnings)


def test_send_deid_refuses_burned_in_text_before_anything_is_sent(home: Path, run, key: Path):
    """`send --deid` applies the same rule; the refusal comes before any gateway is asked."""
    from cli_support import FAST, PASSPHRASE
    from scanseal.crypto.identity import Keystore

    card = home / "bob.card.json"
    card.write_text(Keystore(home / "keys", scrypt_n=FAST).create("bob", PASSPHRASE).card.to_json())
    work = home / "work"
    result = run("send", str(US), "--to", str(card), "--as", "bob", "--workdir", str(work),
                 "--gateway", "http://127.0.0.1:9", "--deid", str(key))  # fmt: skip
    assert result.code == 2
    assert "US1_UNCR.dcm: an ultrasound image with no BurnedInAnnotation" in one_error_line(result)
    assert not (work / "tokens").exists()
    assert "--allow-burned-in" in run("send", "--help").out


def test_no_file_meta_element_of_the_source_travels(home: Path, run, key: Path) -> None:
    """The source's AE titles, address, implementation and private file meta information name
    the hospital and its devices: the output's file meta is its own; reid brings them back."""
    ds = pydicom.dcmread(FILES[0])
    meta = ds.file_meta
    meta.SourceApplicationEntityTitle = "HOSPITAL_CT1"
    meta.SendingApplicationEntityTitle = "HOSP_SEND"
    meta.ReceivingApplicationEntityTitle = "HOSP_RECV"
    meta.SourcePresentationAddress = "dicom://ct1.hospital.example:104"
    meta.PrivateInformationCreatorUID = "1.2.3.4.5"
    meta.PrivateInformation = b"ward 7 bed 3"
    meta.ImplementationVersionName = "HOSPCT_V1"
    source = home / "meta.dcm"
    ds.save_as(source)
    out = home / "out"
    assert run("deid", str(source), "-o", str(out), "--key", str(key)).code == 0
    (written,) = out.glob("*.dcm")
    kept = {element.keyword for element in pydicom.dcmread(written).file_meta}
    assert kept == {
        "FileMetaInformationGroupLength", "FileMetaInformationVersion", "MediaStorageSOPClassUID",
        "MediaStorageSOPInstanceUID", "TransferSyntaxUID", "ImplementationClassUID",
        "ImplementationVersionName",
    }  # fmt: skip
    data = written.read_bytes()
    for value in (b"HOSPITAL_CT1", b"HOSP_SEND", b"HOSP_RECV", b"hospital.example", b"ward 7",
                  b"HOSPCT_V1", b"1.2.3.4.5"):  # fmt: skip
        assert value not in data, value
    token = home / "deid-tokens" / "out" / f"{written.stem}.token"
    back = home / "back.dcm"
    assert run("reid", str(written), "--token", str(token), "--key", str(key),
               "-o", str(back)).code == 0  # fmt: skip
    assert pydicom.dcmread(back).file_meta.PrivateInformation == b"ward 7 bed 3"
