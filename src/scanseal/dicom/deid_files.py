"""De-identification of files: the key file, reading instances, writing a batch all or nothing.

The key file holds the sender's 32-byte secret as 64 hexadecimal digits (mode 0600); it never
leaves the sender, and neither do the tokens. A batch runs in three steps:

1. every input is read and checked (a DICOM file, with SOP Class and SOP Instance UIDs, no two
   with the same SOP Instance UID, no pixels that may show burned-in text unless allowed:
   :func:`burned_in_text`) before anything is written;
2. each is de-identified and written into a hidden staging directory beside the output
   directory, its token into one beside the tokens directory (``.NAME.partial-PID-…``, PID the
   writing process), so a refused or killed run leaves nothing under the final names; the
   next run into the same destination removes the staging directories whose process is gone
   (they may hold tokens);
3. the tokens' staging directory and then the instances' are renamed into place: each in one
   step when its destination does not exist yet, else file by file (each file complete).

The tokens never go inside the output directory: that is the folder a user zips and sends, and
the tokens (with the key) re-identify every instance in it. By default they go to
``$SCANSEAL_HOME/deid-tokens/<output directory's name>/`` (:func:`default_tokens`), beside the
keystore; a tokens directory inside the output is refused.
"""

from __future__ import annotations

import glob
import io
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pydicom
from pydicom.dataset import Dataset

from scanseal.config import scanseal_home
from scanseal.dicom.deid import DeidKey, Option, deidentify, reidentify
from scanseal.errors import InvalidInput, ScanSealError

TOKENS_DIR: Final = "deid-tokens"
"""Under ``$SCANSEAL_HOME``: one directory of tokens per output directory name."""


def new_key_file(path: Path) -> None:
    """Write a fresh key; never overwrites one (losing it loses every re-identification)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} exists; a key file is never overwritten") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(os.urandom(32).hex() + "\n")


def load_key(path: Path) -> DeidKey:
    problem = InvalidInput(f"{path} is not a de-identification key (64 hex digits)")
    try:
        text = path.read_text("ascii").strip()
        secret = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        raise problem from None
    if len(secret) != 32:
        raise problem
    return DeidKey(secret)


def read_instance(path: Path) -> Dataset:
    """A DICOM Part 10 file, every value decoded; InvalidInput naming the file otherwise."""
    try:
        dataset = pydicom.dcmread(path)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a DICOM file") from None
    except Exception:  # pydicom raises many kinds on non-DICOM bytes
        raise InvalidInput(f"{path.name} is not a DICOM file") from None
    try:  # values are decoded lazily: a malformed one fails here, not halfway through a batch
        for _ in dataset.iterall():
            pass
    except Exception as error:
        raise InvalidInput(f"{path.name} has a malformed element: {_first_line(error)}") from None
    return dataset


@dataclass(frozen=True)
class Written:
    source: Path
    output: Path
    token: Path
    burned_in: str | None = None
    """Why its pixels may show identifying text, when that was allowed (``allow_burned_in``)."""


def deidentify_files(
    sources: Sequence[Path],
    key: DeidKey,
    chosen: Sequence[Option],
    outdir: Path,
    tokens: Path,
    allow_burned_in: bool = False,
) -> list[Written]:
    """De-identify every source, all or nothing, into ``outdir/<new SOP UID>.dcm``, each token
    into ``tokens/<new SOP UID>.token``; InvalidInput (nothing written) for any bad input, an
    instance whose pixels may show burned-in text included unless ``allow_burned_in``."""
    check_batch(sources, allow_burned_in)
    _check_destination(outdir)
    _check_destination(tokens)
    _check_apart(outdir, tokens)
    with _Batch(outdir, tokens) as batch:
        written = []
        for source in sources:
            with _naming(source):
                original = read_instance(source)
                result = deidentify(original, key, chosen)
                name = str(result.dataset.SOPInstanceUID)
                batch.add(name, encode(result.dataset), result.token)
            output, token = outdir / f"{name}.dcm", tokens / f"{name}.token"
            written.append(Written(source, output, token, burned_in_text(original)))
    return written


def default_tokens(outdir: Path) -> Path:
    """Where the tokens of a batch into ``outdir`` go unless told: ``$SCANSEAL_HOME/deid-tokens/
    <outdir's name>`` (created owner-only), outside anything the user would share. Token names
    are the keyed new SOP Instance UIDs, so runs into directories of one name share it safely."""
    base = scanseal_home() / TOKENS_DIR
    base.mkdir(mode=0o700, exist_ok=True)
    return base / (outdir.resolve().name or "output")


def _check_apart(outdir: Path, tokens: Path) -> None:
    """InvalidInput for a tokens directory inside the output directory (or the same one)."""
    if tokens.resolve().is_relative_to(outdir.resolve()):
        raise InvalidInput(
            f"tokens {tokens} would be inside the output {outdir}, which is what gets shared; "
            "keep them outside it (--tokens DIR, default $SCANSEAL_HOME/deid-tokens)"
        )


def check_batch(sources: Sequence[Path], allow_burned_in: bool = False) -> None:
    """Read every source: each a DICOM file with SOP Class and Instance UIDs, no UID twice,
    and unless ``allow_burned_in`` none whose pixels may show burned-in text."""
    seen: dict[str, Path] = {}
    for source in sources:
        dataset = read_instance(source)
        for keyword in ("SOPClassUID", "SOPInstanceUID"):
            if not str(dataset.get(keyword, "") or "").strip():
                raise InvalidInput(f"{source.name} has no {keyword} (not a storable instance)")
        burned_in = burned_in_text(dataset)
        if burned_in is not None and not allow_burned_in:
            raise InvalidInput(
                f"{source.name}: {burned_in}; de-identifying pixels is the user's task (PS3.15 "
                "E.1.1), ScanSeal leaves them as they are: check the image, then --allow-burned-in"
            )
        uid = str(dataset.SOPInstanceUID)
        if uid in seen:
            raise InvalidInput(f"{seen[uid]} and {source} have the same SOP Instance UID")
        seen[uid] = source


_US_SC_CLASSES: Final = {
    "1.2.840.10008.5.1.4.1.1.6.1": "an ultrasound",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.6.2": "an ultrasound",  # Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.3.1": "an ultrasound",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.6": "an ultrasound",  # retired
    "1.2.840.10008.5.1.4.1.1.3": "an ultrasound",  # retired multi-frame
    "1.2.840.10008.5.1.4.1.1.7": "a secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.1": "a secondary capture",  # multi-frame single bit
    "1.2.840.10008.5.1.4.1.1.7.2": "a secondary capture",  # multi-frame grayscale byte
    "1.2.840.10008.5.1.4.1.1.7.3": "a secondary capture",  # multi-frame grayscale word
    "1.2.840.10008.5.1.4.1.1.7.4": "a secondary capture",  # multi-frame true color
}
"""SOP Classes whose images often carry text in their pixels (patient name, dates on screen)."""
_US_SC_MODALITIES: Final = {
    "US": "an ultrasound",
    "SC": "a secondary capture",
    "OT": "an OT (other)",
    "XC": "an external-camera (XC)",
}
_PIXELS: Final = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def burned_in_text(dataset: Dataset) -> str | None:
    """Why the pixels of ``dataset`` may show identifying text, or None.

    ScanSeal de-identifies elements, never pixels (PS3.15 E.1.1 leaves that to the user), so an
    instance is refused when its BurnedInAnnotation (0028,0301) is YES, or when it is missing
    (or neither YES nor NO) on an ultrasound, secondary capture, OT or XC image, where machines
    commonly write the patient's name and dates into the picture. NO, or no pixels, is fine."""
    if not any(keyword in dataset for keyword in _PIXELS):
        return None
    said = str(dataset.get("BurnedInAnnotation", "") or "").strip().upper()
    if said == "YES":
        return "BurnedInAnnotation (0028,0301) is YES: its pixels show text"
    if said == "NO":
        return None
    kind = _US_SC_CLASSES.get(str(dataset.get("SOPClassUID", "")))
    kind = kind or _US_SC_MODALITIES.get(str(dataset.get("Modality", "") or "").strip().upper())
    if kind is None:
        return None
    return f"{kind} image with no BurnedInAnnotation (0028,0301) may hold burned-in text"


def reidentify_file(source: Path, token: Path, key: DeidKey, output: Path) -> None:
    """Restore ``source`` with its token into ``output``, file meta as the original had it."""
    try:
        sealed = token.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read token {token}: {error.strerror}") from None
    restored = reidentify(read_instance(source), sealed, key)
    write_atomic(output, encode(restored, as_restored=True))


def encode(dataset: Dataset, as_restored: bool = False) -> bytes:
    """Part 10 bytes. A restored instance keeps its file meta as it is (pydicom's file-format
    mode would set MediaStorageSOPInstanceUID to SOPInstanceUID and add what the original
    lacked); the group length is recomputed either way."""
    out = io.BytesIO()
    if as_restored:
        if getattr(dataset, "preamble", None) is None:
            dataset.preamble = b"\x00" * 128
        dataset.save_as(out, enforce_file_format=False)
    else:
        dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {error.strerror}") from None


# --- staging


@contextmanager
def _naming(source: Path) -> Iterator[None]:
    """Failures while de-identifying ``source`` as one line that names it."""
    try:
        yield
    except ScanSealError as error:
        if source.name in error.reason:
            raise
        raise type(error)(f"{source.name}: {error.reason}") from None
    except Exception as error:  # a value pydicom cannot encode, a malformed data set
        raise InvalidInput(f"{source.name} cannot be de-identified: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_destination(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"{path} exists and is not a directory")


def _remove_stale(parent: Path, name: str) -> None:
    """Remove the staging directories for ``name`` that killed runs left: those whose writing
    process (the PID in the name) no longer exists. One of a live process, of another user's
    process, or not named by this scheme stays."""
    for stage in parent.glob(f".{glob.escape(name)}.partial-*"):
        owner = _STAGE_PID.fullmatch(stage.name[len(name) + 1 :])
        if owner is None or stage.is_symlink() or not stage.is_dir():
            continue
        if not _alive(int(owner.group(1))):
            shutil.rmtree(stage, ignore_errors=True)


_STAGE_PID: Final = re.compile(r"\.partial-([0-9]+)-[0-9a-f]{8}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    return True


class _Stage:
    """A hidden directory beside ``final`` that receives files and is moved into it."""

    def __init__(self, final: Path, mode: int) -> None:
        self.final = final
        self.mode = mode
        parent = final.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale(parent, final.name)
            self.dir = parent / f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
            self.dir.mkdir(mode)
        except OSError as error:
            raise InvalidInput(f"cannot write {final}: {error.strerror}") from None
        self.names: list[str] = []

    def write(self, relative: str, data: bytes, mode: int | None = None) -> None:
        path = self.dir / relative
        if not path.parent.exists():
            path.parent.mkdir(mode if mode is not None else 0o777, parents=True)
        path.write_bytes(data)
        self.names.append(relative)

    def commit(self) -> None:
        """Move into ``final``: one rename if it does not exist, else file by file."""
        if not self.final.exists():
            self.dir.rename(self.final)
            return
        for relative in self.names:
            target = self.final / relative
            target.parent.mkdir(0o700, parents=True, exist_ok=True)
            (self.dir / relative).replace(target)
        shutil.rmtree(self.dir, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class _Batch:
    """Outputs and tokens staged beside their destinations (never one inside the other);
    tokens land first, so no de-identified instance is ever in place without its token."""

    def __init__(self, outdir: Path, tokens: Path) -> None:
        self.outdir, self.tokens = outdir, tokens

    def __enter__(self) -> _Batch:
        self.out_stage = _Stage(self.outdir, 0o777)
        try:
            self.token_stage = _Stage(self.tokens, 0o700)
        except InvalidInput:
            self.out_stage.discard()
            raise
        return self

    def add(self, name: str, instance: bytes, token: bytes) -> None:
        if f"{name}.dcm" in self.out_stage.names:
            raise InvalidInput(f"two inputs de-identify to the same SOP Instance UID {name}")
        token_name = f"{name}.token"
        try:
            self.token_stage.write(token_name, token, mode=0o700)
            self.out_stage.write(f"{name}.dcm", instance)
        except OSError as error:
            raise InvalidInput(f"cannot write {self.outdir}: {error.strerror}") from None

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is not None:
            self.discard()
            return
        try:
            self.token_stage.commit()
            self.out_stage.commit()
        except OSError as failure:
            self.discard()
            raise InvalidInput(f"cannot write {self.outdir}: {failure.strerror}") from None

    def discard(self) -> None:
        self.out_stage.discard()
        self.token_stage.discard()
