"""Shared helpers: one-line errors naming the file, and mapping library exceptions to them."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

from scanseal.errors import InvalidInput, ScanSealError

_MAX_REASON = 300
_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    """Collapse whitespace and cap the length: reasons end up in logs, CLIs and HTTP bodies."""
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= _MAX_REASON else flat[: _MAX_REASON - 3] + "..."


def fail(path: Path, problem: str, kind: type[InvalidInput] = InvalidInput) -> NoReturn:
    """Raise InvalidInput (or ``kind``, e.g. Unreadable) as "<file name>: <problem>"."""
    raise kind(one_line(f"{path.name}: {problem}"))


@contextmanager
def mapped_errors(path: Path, what: str, kind: type[InvalidInput] = InvalidInput) -> Iterator[None]:
    """Turn any exception raised by pydicom, Pillow or a codec into InvalidInput (or ``kind``).

    Those libraries raise a zoo of types (ValueError, OSError, struct.error, RuntimeError,
    KeyError...) on malformed input; callers of ScanSeal must only ever see InvalidInput. A
    panic in a decoder written in Rust (see ``decoder_panic``) means the same.
    """
    try:
        yield
    except ScanSealError:
        raise
    except BaseException as exc:  # the mapping is the point
        if not isinstance(exc, Exception) and not decoder_panic(exc):
            raise  # KeyboardInterrupt, SystemExit, GeneratorExit
        detail = str(exc) or type(exc).__name__
        raise kind(one_line(f"{path.name}: {what}: {detail}")) from exc


def decoder_panic(error: BaseException) -> bool:
    """Whether ``error`` is a Rust panic surfacing from a PyO3 extension (pylibjpeg-rle).

    PyO3 raises ``pyo3_runtime.PanicException``, a ``BaseException`` created at run time (so
    it cannot be imported by name): a decoder that panics on its input has refused it.
    """
    return type(error).__module__ == "pyo3_runtime"


def file_size(path: Path) -> int:
    """Return the size of a regular file, or fail with a clear reason."""
    try:
        if not path.is_file():
            fail(path, "not a regular file")
        return path.stat().st_size
    except OSError as exc:
        fail(path, f"cannot read: {exc.strerror or exc}")


@dataclass(frozen=True)
class Source:
    """What ingest reads: the file at ``path``, or with ``data`` the bytes of one already in
    memory (an instance a DICOM sender just transferred), which ``path`` then only names in
    every error, as the file's name does."""

    path: Path
    data: bytes | None = None

    def open(self) -> BinaryIO:
        """A new binary stream over the whole input, positioned at its start."""
        return _Named(self.data, str(self.path)) if self.data is not None else self.path.open("rb")

    def size(self) -> int:
        """The input's size in bytes (a file: checked to be a regular, readable one)."""
        return len(self.data) if self.data is not None else file_size(self.path)


class _Named(io.BytesIO):
    """Bytes in memory read as a file: a name, as an open file has, which pydicom puts in its
    warnings (and fails without, on a data set cut short). Never used to open anything: ingest
    reads bytes in memory with no deferred values."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name
