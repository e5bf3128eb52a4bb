"""Canonical JSON and a strict reader for the small JSON documents ScanSeal signs and stores.

Signed and encrypted-at-rest documents are hashed or authenticated as bytes, so there must be one
byte string per document: sorted keys, no whitespace, UTF-8. The reader is strict for the same
reason: duplicate keys, NaN, a boolean where a number belongs or a field nobody defined would let
two parsers disagree about what was signed, so each is an InvalidInput naming the field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, NoReturn

from scanseal.errors import InvalidInput

JsonObject = dict[str, Any]


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The one byte encoding of ``value``: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def b64encode(raw: bytes) -> str:
    """Standard, padded base64 (RFC 4648 §4)."""
    return base64.b64encode(raw).decode("ascii")


def parse_object(text: str | bytes, what: str) -> JsonObject:
    """Parse one JSON object; anything else (or a duplicate key, or NaN) is InvalidInput."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidInput(f"{what} is not valid JSON: {_first_line(error)}") from None
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


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
