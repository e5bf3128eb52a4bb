"""The fuzz harness: seeded mutation of real inputs, a runner, and the limits every input meets.

Input ``i`` of target ``T`` under seed ``S`` is a pure function of ``(T, S, i)``: its random
generator is seeded with that string, picks one of the target's real seed inputs and applies a
few mutations (byte-level, and JSON- or TOML-aware where the input is one of those). So any
failure is reproduced by ``python -m fuzz --target T --seed S --index i`` (stateful targets,
whose outcome depends on what came before, replay inputs 0..i).

An input passes when the target returns or raises a :class:`~scanseal.errors.ScanSealError`.
Anything else fails: another exception, a BaseException (a decoder's panic), an HTTP 5xx, more
than ``TIMEOUT`` seconds on one input, or the process's RSS growing by more than ``RSS_LIMIT``
while the target runs. A hang or a memory blow-up cannot be unwound, so the watchdog prints the
reproducer and every thread's stack and ends the process. A crash of the interpreter itself (a
segfault) leaves faulthandler's stacks; ``--trace`` names each input before it runs.
"""

from __future__ import annotations

import faulthandler
import json
import math
import os
import random
import sys
import threading
import time
import tomllib
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanseal.errors import ScanSealError

TIMEOUT = 10.0
"""Seconds one input may take."""
RSS_LIMIT = 1 << 30
"""Bytes the process's resident set may grow by while one target runs."""
MAX_DEPTH = 100_000
"""Deepest JSON or TOML nesting added to a document's text (on top of at most 3 times
:data:`STRUCTURE_DEPTH` and the seed's own): far past the readers' bound (32 levels, checked by a
flat scan before any parser runs) and past the interpreter's recursion limit, which py-evm
raises to 100,000. Such nesting is added to the serialised text only (brackets around it), so
the mutator itself never recurses or serialises that deep."""
STRUCTURE_DEPTH = 100
"""Deepest nesting built as Python values (3 wraps per input at most), which json.dumps and
the TOML writer then recurse through."""
MAX_SIZE = 1 << 20
"""Largest generated input in bytes (repetition mutations stop growing there)."""


@dataclass(frozen=True)
class KnownIssue:
    """A fault found by fuzzing and being fixed elsewhere: recognised, counted, not failed.

    It matches an escaped exception whose class (or a base class) is named ``exception`` and
    whose traceback passes through a file whose path ends with ``where`` (any file if empty).
    """

    name: str
    exception: str
    where: str = ""

    def matches(self, error: BaseException) -> bool:
        names = {kind.__name__ for kind in type(error).__mro__}
        if self.exception not in names:
            return False
        if not self.where:
            return True
        files = [f.f_code.co_filename for f, _ in traceback.walk_tb(error.__traceback__)]
        return any(name.replace(os.sep, "/").endswith(self.where) for name in files)


KNOWN_ISSUES: tuple[KnownIssue, ...] = ()
"""Faults being fixed in their own packages. Empty this once those fixes are merged: the
targets then fail on them like on anything else."""


class Failure(Exception):
    """What a target reports for an outcome that is neither a return nor a ScanSealError."""


@dataclass
class Finding:
    target: str
    seed: int
    index: int
    error: BaseException
    case: bytes

    def signature(self) -> str:
        """Exception class and the deepest ScanSeal frame: one line per distinct fault."""
        frames = list(traceback.walk_tb(self.error.__traceback__))
        ours = [f for f, _ in frames if "/scanseal/" in f.f_code.co_filename.replace(os.sep, "/")]
        where = ours[-1] if ours else (frames[-1][0] if frames else None)
        place = "" if where is None else f" at {where.f_code.co_filename}:{where.f_lineno}"
        return f"{type(self.error).__name__}{place}"

    def report(self, stateful: bool) -> str:
        lines = "".join(traceback.format_exception(self.error)).rstrip()
        replay = "(replays inputs 0..index)" if stateful else ""
        return (
            f"fuzz target {self.target}: input {self.index} of seed {self.seed} failed\n"
            f"  reproduce: {reproducer(self.target, self.seed, self.index)} {replay}\n"
            f"  input ({len(self.case)} bytes): {self.case[:300]!r}\n{lines}"
        )


@dataclass
class Outcome:
    target: str
    seed: int
    inputs: int = 0
    seconds: float = 0.0
    rss_growth: int = 0
    failures: int = 0
    distinct: dict[str, Finding] = field(default_factory=dict)
    """The first failing input of each distinct fault (:meth:`Finding.signature`)."""
    known: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0


def reproducer(target: str, seed: int, index: int) -> str:
    return f"PYTHONPATH=src:tests python -m fuzz --target {target} --seed {seed} --index {index}"


class Target:
    """One fuzz target: real seed inputs, how to mutate them, and the code under test."""

    name: str = ""
    stateful: bool = False
    """The outcome of an input depends on earlier inputs (a gateway's state)."""
    test_inputs: int = 2000
    """Inputs per run under ``make test``."""

    def setup(self, workdir: Path) -> None:
        """Build the seeds (and anything the target needs) under ``workdir``."""

    def teardown(self) -> None:
        """Release what :meth:`setup` opened."""

    def generate(self, mutator: Mutator) -> Any:
        """One input, from ``mutator``'s seeded random generator only."""
        raise NotImplementedError

    def run(self, case: Any) -> None:
        """Feed one input; raise ScanSealError, or Failure for a wrong outcome."""
        raise NotImplementedError

    def dump(self, case: Any) -> bytes:
        """The input as bytes, for the report."""
        return case if isinstance(case, bytes) else repr(case).encode()


# --- the runner ---------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Watchdog:
    """A thread that ends the process when one input runs too long or memory grows too much.

    faulthandler's own timer backs it up for code that holds the GIL (a C decoder in a loop).
    """

    def __init__(self) -> None:
        self.label: str | None = None
        self.started = 0.0
        self.rss_base = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="fuzz-watchdog", daemon=True).start()

    def begin(self, label: str) -> None:
        with self._lock:
            self.label, self.started = label, time.monotonic()
        faulthandler.dump_traceback_later(TIMEOUT + 5, exit=True)

    def end(self) -> None:
        with self._lock:
            self.label = None
        faulthandler.cancel_dump_traceback_later()

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            with self._lock:
                label, started = self.label, self.started
            if label is None:
                continue
            if time.monotonic() - started > TIMEOUT:
                self._abort(f"hung for more than {TIMEOUT:.0f} s", label)
            grown = rss_bytes() - self.rss_base
            if grown > RSS_LIMIT:
                self._abort(f"RSS grew by {grown >> 20} MiB (limit {RSS_LIMIT >> 20} MiB)", label)

    @staticmethod
    def _abort(problem: str, label: str) -> None:
        print(f"\nFUZZ FAILURE: {problem}\n  reproduce: {label}", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
        os._exit(70)


_WATCHDOG: _Watchdog | None = None


def _watchdog() -> _Watchdog:
    global _WATCHDOG
    if _WATCHDOG is None:
        faulthandler.enable()
        _WATCHDOG = _Watchdog()
    return _WATCHDOG


def case_for(target: Target, seed: int, index: int) -> Any:
    return target.generate(Mutator(random.Random(f"{target.name}:{seed}:{index}")))


def run(
    target: Target,
    count: int,
    seed: int,
    *,
    start: int = 0,
    trace: bool = False,
    on_finding: Callable[[Finding], None] | None = None,
) -> Outcome:
    """Feed inputs ``start .. start+count-1`` of ``seed`` to a set-up ``target``."""
    dog = _watchdog()
    outcome = Outcome(target.name, seed)
    dog.rss_base = rss_bytes()
    began = time.perf_counter()
    for index in range(start, start + count):
        if trace:
            print(f"{target.name} input {index}", file=sys.stderr, flush=True)
        case = case_for(target, seed, index)
        dog.begin(reproducer(target.name, seed, index))
        one = time.perf_counter()
        error = _attempt(target, case)
        outcome.slowest = max(outcome.slowest, time.perf_counter() - one)
        dog.end()
        outcome.inputs += 1
        if error is None:
            continue
        known = next((k for k in KNOWN_ISSUES if k.matches(error)), None)
        if known is not None:
            outcome.known[known.name] += 1
            continue
        outcome.failures += 1
        finding = Finding(target.name, seed, index, error, target.dump(case))
        if finding.signature() not in outcome.distinct:
            outcome.distinct[finding.signature()] = finding
            if on_finding is not None:
                on_finding(finding)
    outcome.seconds = time.perf_counter() - began
    outcome.rss_growth = rss_bytes() - dog.rss_base
    return outcome


def _attempt(target: Target, case: Any) -> BaseException | None:
    try:
        target.run(case)
    except ScanSealError:
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # the point: a panic or any other escape is a finding
        return error
    return None


# --- mutation -----------------------------------------------------------------------------------

_INTERESTING_INTS = (
    0, 1, -1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 1024, 4096,
    32767, 32768, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
    2**64, 2**256, -(2**31), -(2**63),
)  # fmt: skip
_STRINGS = (
    "", " ", "\x00", "\ud800", "\udfff", "a\ud83d", "\u202e", "é", "0x", "0x00", "null", "true",
    "../../etc/passwd", "%00", "%2e%2e%2f", "\\", '"', "\n", "\r\n", "b", "bafy", "Qm",
    "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "=" * 4, "A" * 4097,
)  # fmt: skip


class Mutator:
    """Mutations drawn from one seeded generator (``rng``), so every input is reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # bytes

    def bytes_(self, data: bytes, others: list[bytes] | None = None, rounds: int = 0) -> bytes:
        """1-4 (or ``rounds``) byte-level mutations of ``data``."""
        buf = bytearray(data)
        for _ in range(rounds or self.rng.randint(1, 4)):
            buf = self._byte_op(buf, others or [])
        return bytes(buf[:MAX_SIZE])

    def _byte_op(self, buf: bytearray, others: list[bytes]) -> bytearray:
        r = self.rng
        n = len(buf)
        op = r.randrange(10)
        at = r.randrange(n + 1)
        if op == 0 and n:  # flip a bit
            at = min(at, n - 1)
            buf[at] ^= 1 << r.randrange(8)
        elif op == 1 and n:  # an interesting byte
            buf[min(at, n - 1)] = r.choice((0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x5B, 0x7B, 0x22))
        elif op == 2:  # insert random bytes
            buf[at:at] = r.randbytes(r.choice((1, 2, 4, 8, 64)))
        elif op == 3 and n:  # delete a range
            del buf[at : at + r.choice((1, 2, 4, 16, 256, n))]
        elif op == 4:  # truncate
            del buf[at:]
        elif op == 5 and n:  # duplicate a range, possibly many times
            end = min(n, at + r.choice((1, 4, 16, 256)))
            times = r.choice((1, 2, 16, 1000))
            buf[at:at] = bytes(buf[at:end]) * min(times, MAX_SIZE // max(1, end - at))
        elif op == 6 and n >= 8:  # an interesting integer, 1/2/4/8 bytes, either byte order
            width = r.choice((1, 2, 4, 8))
            at = min(at, n - width)
            value = r.choice(_INTERESTING_INTS) % (1 << (8 * width))
            buf[at : at + width] = value.to_bytes(width, r.choice(("little", "big")))
        elif op == 7 and others:  # splice with another seed
            other = r.choice(others)
            cut = r.randrange(len(other) + 1)
            buf = buf[:at] + bytearray(other[cut:])
        elif op == 8 and n:  # swap two ranges
            other_at = r.randrange(n)
            width = r.choice((1, 2, 4, 8, 32))
            a, b = bytes(buf[at : at + width]), bytes(buf[other_at : other_at + width])
            buf[at : at + width], buf[other_at : other_at + width] = b, a
        else:  # random bytes over a range
            width = r.choice((1, 4, 16))
            buf[at : at + width] = r.randbytes(width)
        return buf

    def text(self, value: str) -> str:
        """A mutated string: a byte mutation decoded back, or an interesting string."""
        r = self.rng
        choice = r.randrange(6)
        if choice == 0:
            return r.choice(_STRINGS)
        if choice == 1:
            return value + r.choice(_STRINGS)
        if choice == 2 and value:  # one character changed (hex and base64 stay plausible)
            at = r.randrange(len(value))
            return value[:at] + r.choice("0123456789abcdefABCDEF+/=_-x ") + value[at + 1 :]
        if choice == 3:
            return value.upper() if r.random() < 0.5 else value[: r.randrange(len(value) + 1)]
        raw = self.bytes_(value.encode("utf-8", "surrogatepass"), rounds=1)
        return raw.decode("utf-8", "surrogateescape")

    # JSON

    def json_value(self, value: Any) -> Any:
        """``value`` with 1-3 structural mutations at random places."""
        for _ in range(self.rng.randint(1, 3)):
            value = self._mutate_at(value, self.rng.randint(0, 4))
        return value

    def _mutate_at(self, value: Any, depth: int) -> Any:
        r = self.rng
        if depth > 0 and isinstance(value, dict) and value:
            key = r.choice(list(value))
            return {**value, key: self._mutate_at(value[key], depth - 1)}
        if depth > 0 and isinstance(value, list) and value:
            at = r.randrange(len(value))
            return [*value[:at], self._mutate_at(value[at], depth - 1), *value[at + 1 :]]
        return self._replace(value)

    def _replace(self, value: Any) -> Any:
        r = self.rng
        op = r.randrange(12)
        if op == 0 and isinstance(value, dict) and value:  # drop a key
            key = r.choice(list(value))
            return {k: v for k, v in value.items() if k != key}
        if op == 1 and isinstance(value, dict):  # an unknown key
            return {**value, self.text("extra"): self._scalar()}
        if op == 2:  # nested (at most 3 of these per input: MAX_DEPTH is the text's own)
            depth = r.choice((2, 10, 33, STRUCTURE_DEPTH))
            for _ in range(depth):
                value = [value] if r.random() < 0.5 else {"a": value}
            return value
        if op == 3 and isinstance(value, str):
            return self.text(value)
        if op == 4 and isinstance(value, int) and not isinstance(value, bool):
            as_float = float(value) if abs(value) < 2**1000 else math.inf
            return r.choice((value + 1, value - 1, -value, value * 2**64, as_float))
        if op == 5 and isinstance(value, list):
            return [*value, *value] if r.random() < 0.5 else value[: r.randrange(len(value) + 1)]
        return self._scalar()

    def _scalar(self) -> Any:
        r = self.rng
        return r.choice(
            (
                None, True, False, 0, -1, 1.5, -0.0, 1e308, 10**400, r.choice(_INTERESTING_INTS),
                r.choice(_STRINGS), [], {}, [None], {"": None},
            )
        )  # fmt: skip

    def json_text(self, value: Any) -> bytes:
        """Serialise a (mutated) JSON value, sometimes with a duplicate key or a huge number."""
        r = self.rng
        style = r.randrange(4)
        try:
            if style == 0:
                text = json.dumps(value, indent=2)
            else:
                text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except ValueError:  # a float JSON cannot spell: let the numbers below stand in
            text = json.dumps(str(value))
        choice = r.randrange(8)
        if choice == 0 and text.startswith("{") and len(text) > 2:  # a duplicate key
            head = text[1:].split(",", 1)[0].rstrip("}")
            text = "{" + head + "," + text[1:]
        elif choice == 1:  # a number too long for int() or float()
            digits = r.choice(("1" * 5000, "1e99999", "-1e-99999", "1" * 400 + ".5"))
            text = text.replace(":1", ":" + digits, 1).replace(":0", ":" + digits, 1)
        elif choice == 2:  # nested deep in the text itself: the document, inside n arrays/objects
            text = _deep(r, text)
        raw = text.encode("utf-8", "surrogatepass")
        if r.random() < 0.2:
            raw = self.bytes_(raw, rounds=1)
        return raw

    def json_doc(self, seeds: list[bytes]) -> bytes:
        """A mutated JSON document from one of ``seeds``: structural, or byte-level (1 in 3)."""
        seed = self.rng.choice(seeds)
        if self.rng.random() < 1 / 3:
            return self.bytes_(seed, seeds)
        return self.json_text(self.json_value(json.loads(seed)))

    # TOML

    def toml_doc(self, seeds: list[bytes]) -> bytes:
        """A mutated TOML document: values, lines or bytes."""
        r = self.rng
        seed = r.choice(seeds)
        choice = r.randrange(4)
        if choice == 0:
            return self.bytes_(seed, seeds)
        if choice == 3:  # a value nested deep in the text, before or after the tables
            line = b"deep = " + _deep(r, '"v"', arrays_only=True).encode()
            return line + b"\n" + seed if r.random() < 0.5 else seed + b"\n[deep]\n" + line
        if choice == 1:
            lines = seed.split(b"\n")
            for _ in range(r.randint(1, 3)):
                at = r.randrange(len(lines))
                op = r.randrange(3)
                if op == 0:
                    del lines[at]
                elif op == 1:
                    lines.insert(r.randrange(len(lines) + 1), lines[at])
                else:
                    lines[at] = self.bytes_(lines[at], rounds=1)
            return b"\n".join(lines)
        return toml_dumps(self.json_value(tomllib.loads(seed.decode()))).encode(
            "utf-8", "surrogatepass"
        )


def _deep(r: random.Random, text: str, *, arrays_only: bool = False) -> str:
    """``text`` inside up to :data:`MAX_DEPTH` JSON arrays or objects (one kind per input)."""
    depth = r.choice((33, 1000, MAX_DEPTH))
    if arrays_only or r.random() < 0.5:
        return "[" * depth + text + "]" * depth
    return '{"a":' * depth + text + "}" * depth


def toml_dumps(document: Any) -> str:
    """TOML for a document of tables (what the mutator makes of a parsed config)."""
    if not isinstance(document, dict):
        return f"value = {_toml_value(document)}\n"
    out: list[str] = []
    plain = {k: v for k, v in document.items() if not isinstance(v, dict)}
    out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plain.items())
    for name, table in document.items():
        if isinstance(table, dict):
            out.append(f"[{_toml_key(name)}]")
            out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


def _toml_key(key: str) -> str:
    return json.dumps(key)


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if math.isinf(value) else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))
