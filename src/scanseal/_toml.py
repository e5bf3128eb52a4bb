"""Reading ScanSeal's TOML configuration files, bounded before ``tomllib`` parses them.

``tomllib`` descends one Python call per nested array or inline table; with the recursion limit
py-evm sets that is a RecursionError (or a stack overflow) rather than a refusal. The
configuration file is read through :func:`read_toml` (by ``scanseal.config.resolve``): at most
:data:`MAX_CONFIG` bytes of UTF-8, nested at most :data:`MAX_DEPTH` levels, and any failure one
InvalidInput naming it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Final

from scanseal._bounds import check_nesting
from scanseal.errors import InvalidInput

MAX_CONFIG: Final = 1024 * 1024
MAX_DEPTH: Final = 32
_TOKENS: Final = re.compile(
    r'"""(?:[^"\\]++|\\.|"(?!""))*+(?:"{3,5})?'  # multi-line basic string (up to 2 more quotes)
    r"|'''(?:[^']++|'(?!''))*+(?:'{3,5})?"  # multi-line literal string
    r'|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"?'  # basic string
    r"|'[^'\n]*+'?"  # literal string
    r"|#[^\n]*+"  # comment
    r"|[\[\]{}]",
    re.DOTALL,
)
"""Strings and comments whole (to their end, or to the end of the text when unterminated, in one
pass), brackets one at a time: a bracket inside a string or a comment is never counted."""


def read_toml(path: Path) -> dict[str, Any]:
    """The document in the TOML file at ``path``; InvalidInput "cannot read config …" otherwise."""
    where = f"config {path}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG + 1)
    except OSError as error:
        raise InvalidInput(f"cannot read {where}: {error.strerror or error}") from None
    if len(raw) > MAX_CONFIG:
        raise InvalidInput(f"cannot read {where}: larger than {MAX_CONFIG} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"cannot read {where}: not UTF-8 text") from None
    check_nesting(_TOKENS, text, where, MAX_DEPTH)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"cannot read {where}: {error}") from None
    except ValueError:  # an integer longer than int() converts (4,300 digits)
        raise InvalidInput(f"cannot read {where}: a number is too long") from None
