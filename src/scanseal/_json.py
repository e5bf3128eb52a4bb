"""Canonical JSON and a strict reader for the small JSON documents ScanSeal signs and stores.

Signed and encrypted-at-rest documents are hashed or authenticated as bytes, so there must be one
byte string per document: sorted keys, no whitespace, UTF-8. The reader is strict for the same
reason: duplicate keys, NaN, a boolean where a number belongs or a field nobody defined would let
two parsers disagree about what was signed, so each is an InvalidInput naming the field.

Every document from outside is bounded before the parser sees it: its size, and its nesting depth,
counted by a flat scan of its brackets outside strings. The C parser recurses once per level and
py-evm raises the interpreter's recursion limit to 100,000, so without this bound a few hundred
kilobytes of ``[`` overflow the thread's stack and kill the process. Lone UTF-16 surrogates
(``"\\ud800"``) are refused too: they parse, but no UTF-8 encoding of them exists, so the canonical
bytes of such a document could not be computed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from scanseal._bounds import check_nesting
from scanseal.errors import InvalidInput

JsonObject = dict[str, Any]
MAX_DEPTH: Final = 32
"""Deepest nesting of arrays and objects a document may have; ScanSeal's own use four."""
MAX_DOCUMENT: Final = 4 * 1024 * 1024
"""Largest document, in bytes of UTF-8, the reader parses unless a caller sets a smaller bound."""
_TOKENS: Final = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?|[\[\]{}]', re.DOTALL)
"""A string (to its closing quote, or to the end when unterminated: one pass, no backtracking)
or a bracket; brackets inside strings are thereby skipped."""
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_LONE: Final = "holds a lone UTF-16 surrogate"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The one byte encoding of ``value``: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def b64encode(raw: bytes) -> str:
    """Standard, padded base64 (RFC 4648 §4)."""
    return base64.b64encode(raw).decode("ascii")


def parse_value(text: str | bytes, what: str, *, max_size: int = MAX_DOCUMENT) -> Any:
    """Parse one JSON document of at most ``max_size`` bytes and :data:`MAX_DEPTH` levels.

    Bytes must be UTF-8 (no BOM). Too large, too deep, malformed, a duplicate key, NaN or a lone
    surrogate: InvalidInput naming ``what``. The bounds are checked before the parser runs.
    """
    too_large = InvalidInput(f"{what} is larger than {max_size} bytes")
    if len(text) > max_size:  # a character is at least one byte
        raise too_large
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{what} is not UTF-8") from None
    else:
        try:
            if len(text.encode("utf-8")) > max_size:
                raise too_large
        except UnicodeEncodeError:
            raise InvalidInput(f"{what} {_LONE}") from None
    check_nesting(_TOKENS, text, what, MAX_DEPTH)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, or a raised hook
        raise InvalidInput(f"{what} is not valid JSON: {_first_line(error)}") from None
    if "\\u" in text:  # the text itself is valid UTF-8 now: only an escape can make one
        _refuse_surrogates(value, what)
    return value


def parse_object(text: str | bytes, what: str, *, max_size: int = MAX_DOCUMENT) -> JsonObject:
    """Parse one JSON object under :func:`parse_value`'s rules; any other value is InvalidInput."""
    value = parse_value(text, what, max_size=max_size)
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


class Reader:
    """Typed access to the fields of one parsed object, naming the field in every error."""

    def __init__(self, obj: JsonObject, where: str, prefix: str = "") -> None:
        self._obj = obj
        self._where = where
        self._prefix = prefix

    def only(self, *allowed: str) -> None:
        """Reject fields outside ``allowed``: an unknown field would be unsigned decoration."""
        for key in self._obj:
            if key not in allowed:
                self.fail(key, "is not a known field")

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            self.fail(key, "must be a string")
        return value

    def integer(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be an integer")
        return value

    def b64(self, key: str) -> bytes:
        """Standard padded base64 in its one canonical spelling."""
        value = self.text(key)
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.fail(key, "is not valid base64")
        if b64encode(raw) != value:
            self.fail(key, "is not canonical padded base64")
        return raw

    def mapping(self, key: str) -> JsonObject:
        value = self._get(key)
        if not isinstance(value, dict):
            self.fail(key, "must be a JSON object")
        return value

    def value(self, key: str) -> Any:
        """The raw value of a field that must be present (for fields where null is legal)."""
        return self._get(key)

    def child(self, key: str) -> Reader:
        """A reader for a nested object whose errors name ``parent.key.field``."""
        return Reader(self.mapping(key), self._where, f"{self._prefix}{key}.")

    def fields(self) -> list[str]:
        return list(self._obj)

    def fail(self, key: str, problem: str) -> NoReturn:
        raise InvalidInput(f"{self._where}: field '{self._prefix}{key}' {problem}")

    def _get(self, key: str) -> Any:
        if key not in self._obj:
            self.fail(key, "is missing")
        return self._obj[key]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj: JsonObject = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _refuse_surrogates(value: Any, what: str) -> None:
    """Walk every key and string (iteratively: depth is bounded, but no recursion is needed).

    The parser joins an escaped surrogate pair into one character, so any surrogate left in a
    string is a lone one."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and (lone := _SURROGATE.search(item)) is not None:
            raise InvalidInput(f"{what} {_LONE} (\\u{ord(lone.group()):04x})")


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
