"""Direct ABI encoding and decoding for ImageRegistry calls and events.

Going through eth_abi with precomputed selectors, instead of web3's contract objects, keeps the
per-transaction overhead low enough for the benchmarks and gives one code path for both chains.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from scanseal.ledger._artifact import load_artifact


def _type_of(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_of(component) for component in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


@dataclass(frozen=True)
class _Function:
    selector: bytes
    inputs: list[str]
    outputs: list[str]


@dataclass(frozen=True)
class _Event:
    name: str
    topic: bytes
    indexed: list[tuple[str, str]]
    data: list[tuple[str, str]]


@cache
def _functions() -> dict[str, _Function]:
    table: dict[str, _Function] = {}
    for item in load_artifact().abi:
        if item.get("type") != "function":
            continue
        inputs = [_type_of(p) for p in item["inputs"]]
        outputs = [_type_of(p) for p in item["outputs"]]
        selector = keccak(text=f"{item['name']}({','.join(inputs)})")[:4]
        table[str(item["name"])] = _Function(selector, inputs, outputs)
    return table


@cache
def events() -> dict[bytes, _Event]:
    """Every event of the contract by its topic 0."""
    table: dict[bytes, _Event] = {}
    for item in load_artifact().abi:
        if item.get("type") != "event":
            continue
        types = [_type_of(p) for p in item["inputs"]]
        topic = keccak(text=f"{item['name']}({','.join(types)})")
        indexed = [(str(p["name"]), _type_of(p)) for p in item["inputs"] if p["indexed"]]
        data = [(str(p["name"]), _type_of(p)) for p in item["inputs"] if not p["indexed"]]
        table[topic] = _Event(str(item["name"]), topic, indexed, data)
    return table


def event_topic(name: str) -> bytes:
    """Topic 0 of the event called `name`."""
    for topic, event in events().items():
        if event.name == name:
            return topic
    raise KeyError(name)


def encode_call(name: str, *args: Any) -> bytes:
    """Calldata for `name(args)`."""
    function = _functions()[name]
    return function.selector + abi_encode(function.inputs, list(args))


def decode_call(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(function name, arguments by name) of calldata for this contract, or None when its
    selector is none of the contract's functions."""
    for item in load_artifact().abi:
        if item.get("type") != "function":
            continue
        function = _functions()[str(item["name"])]
        if data[:4] != function.selector:
            continue
        values = abi_decode(function.inputs, data[4:])
        names = [str(p["name"]) or f"arg{i}" for i, p in enumerate(item["inputs"])]
        return str(item["name"]), {n: _normalize(v) for n, v in zip(names, values, strict=True)}
    return None


def decode_output(name: str, data: bytes) -> tuple[Any, ...]:
    """Return values of `name`, addresses checksummed."""
    return tuple(_normalize(v) for v in abi_decode(_functions()[name].outputs, data))


def decode_log(topics: list[bytes], data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(event name, fields) of a log of this contract, or None for an unknown topic."""
    if not topics:
        return None
    event = events().get(bytes(topics[0]))
    if event is None:
        return None
    fields: dict[str, Any] = {}
    for (name, kind), topic in zip(event.indexed, topics[1:], strict=True):
        fields[name] = _normalize(abi_decode([kind], bytes(topic))[0])
    values = abi_decode([kind for _, kind in event.data], bytes(data))
    for (name, _), value in zip(event.data, values, strict=True):
        fields[name] = _normalize(value)
    return event.name, fields


def _normalize(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, tuple):
        return tuple(_normalize(v) for v in value)
    return value
