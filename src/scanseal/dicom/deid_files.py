"""De-identification of files: the key file, reading instances, writing results atomically.

The key file holds the sender's 32-byte secret as 64 hexadecimal digits (mode 0600); it never
leaves the sender, and neither do the tokens. A batch is de-identified in memory first and
written only when every input was a DICOM instance, each file through a temporary name and a
rename, so a refused batch leaves nothing behind.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pydicom
from pydicom.dataset import Dataset

from scanseal.dicom.deid import DeidKey, Option, deidentify, reidentify
from scanseal.errors import InvalidInput

KEEP: Final = {
    "dates": Option.RETAIN_MODIFIED_DATES,
    "patient": Option.RETAIN_PATIENT_CHARACTERISTICS,
    "device": Option.RETAIN_DEVICE_IDENTITY,
    "uids": Option.RETAIN_UIDS,
}


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


def options(keep: Iterable[str]) -> list[Option]:
    chosen = []
    for word in keep:
        if word not in KEEP:
            raise InvalidInput(f"--keep takes {', '.join(KEEP)}, not {word!r}")
        chosen.append(KEEP[word])
    return chosen


def read_instance(path: Path) -> Dataset:
    """A DICOM Part 10 file; InvalidInput naming the file for anything else."""
    try:
        return pydicom.dcmread(path)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except Exception:  # pydicom raises many kinds on non-DICOM bytes
        raise InvalidInput(f"{path.name} is not a DICOM file") from None


@dataclass(frozen=True)
class Written:
    source: Path
    output: Path
    token: Path


def deidentify_files(
    sources: Sequence[Path], key: DeidKey, chosen: Sequence[Option], outdir: Path, tokens: Path
) -> list[Written]:
    """De-identify every source (all or nothing) into ``outdir/<new SOP UID>.dcm``, each token
    into ``tokens/<new SOP UID>.token``."""
    done = [(s, deidentify(read_instance(s), key, chosen)) for s in sources]
    outdir.mkdir(parents=True, exist_ok=True)
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for source, result in done:
        name = str(result.dataset.SOPInstanceUID)
        output, token = outdir / f"{name}.dcm", tokens / f"{name}.token"
        write_atomic(token, result.token)
        write_atomic(output, encode(result.dataset))
        written.append(Written(source, output, token))
    return written


def reidentify_file(source: Path, token: Path, key: DeidKey, output: Path) -> None:
    try:
        sealed = token.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read token {token}: {error.strerror}") from None
    write_atomic(output, encode(reidentify(read_instance(source), sealed, key)))


def encode(dataset: Dataset) -> bytes:
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)
