"""DICOM PS3.15 Table E.1-1 and the IOD Types it is resolved against, as generated data.

``ps3_15_e1_1.json`` beside this file is made by ``tools/deid/make_profile.py`` from the
standard's machine-readable tables (its ``profile_source`` and ``types_source`` name them and
their edition); nothing here is typed by hand. Each row carries the Basic Profile action (``X``
remove, ``Z`` empty, ``D`` dummy, ``U`` UID re-mapped, or a compound such as ``X/Z/D`` resolved by
the attribute's Type in the object's IOD) and the option columns (``K`` keep, ``C`` clean) keyed by
the option's PS3.16 CID 7050 code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from pydicom.tag import BaseTag

ACTIONS: Final = frozenset({"X", "Z", "D", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"})
"""Every Basic Profile action the table uses; :mod:`scanseal.dicom.deid` resolves each."""
OPTION_VALUES: Final = frozenset({"K", "C"})


@dataclass(frozen=True)
class Row:
    tag: str
    """8 hex digits; ``50xxxxxx``/``60xx3000`` for repeating groups, ``odd`` for private."""
    keyword: str
    name: str
    action: str
    options: dict[str, str]
    """CID 7050 code value → ``K`` or ``C``."""


@cache
def _document() -> dict[str, Any]:
    text = resources.files("scanseal.dicom").joinpath("ps3_15_e1_1.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def rows() -> dict[str, Row]:
    """Every row of the table by its tag text."""
    return {
        tag: Row(tag, row["keyword"], row["name"], row["action"], dict(row["options"]))
        for tag, row in _document()["profile"].items()
    }


def source() -> str:
    """Where the table and the Types come from, with their editions."""
    doc = _document()
    return f"{doc['table']}: {doc['profile_source']}; Types: {doc['types_source']}"


def row_for(tag: BaseTag) -> Row | None:
    """The row that names ``tag``, repeating groups and private attributes included."""
    table = rows()
    found = table.get(f"{int(tag):08x}")
    if found is not None:
        return found
    if tag.is_private:
        return table["odd"]
    if 0x5000 <= tag.group <= 0x50FF:
        return table["50xxxxxx"]
    if 0x6000 <= tag.group <= 0x60FF and not tag.group % 2:
        return table.get(f"60xx{tag.element:04x}")
    return None


def iod_for(sop_class_uid: str) -> int | None:
    """The IOD (an index into the Types) of a SOP Class; None for one the standard lacks."""
    found: int | None = _document()["sop_classes"].get(sop_class_uid)
    return found


def required_type(keyword: str, parent: str, iod: int | None) -> str:
    """``1``, ``2`` or ``3``: the Type of ``keyword`` in an item of sequence ``parent`` (``""`` at
    the top level) of the IOD. Without a known IOD, the strictest Type any IOD gives it there;
    within a sequence the IOD does not describe, the strictest Type any IOD gives it in that
    sequence. A dummy or an empty value discloses nothing, so erring strict only costs a removal.
    """
    contexts: dict[str, dict[str, list[int]]] = _document()["types"].get(keyword, {})
    by_type = contexts.get(parent)
    if by_type is None:
        return "3"
    if iod is None or not _describes(parent, iod):
        return min(by_type)
    for kind in sorted(by_type):
        if iod in by_type[kind]:
            return kind
    return "3"


@cache
def _described() -> dict[str, frozenset[int]]:
    """Parent sequence → the IODs whose modules place any typed attribute in its items."""
    found: dict[str, set[int]] = {}
    for contexts in _document()["types"].values():
        for parent, by_type in contexts.items():
            found.setdefault(parent, set()).update(i for ids in by_type.values() for i in ids)
    return {parent: frozenset(ids) for parent, ids in found.items()}


def _describes(parent: str, iod: int) -> bool:
    return parent == "" or iod in _described().get(parent, frozenset())
