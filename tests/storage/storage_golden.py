"""Golden-vector content and the npm importer wrapper shared by tests and make_golden.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

from storage.jsipfs import IMPORTER_SCRIPT, TOOLS

CHUNK = 256 * 1024
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "one-chunk": CHUNK,
    "one-chunk-plus-one": CHUNK + 1,
    "174-chunks": 174 * CHUNK,
    "174-chunks-plus-one": 174 * CHUNK + 1,
    "5-MiB": 5 * 1024 * 1024,
}
CONTENT_RULE = (
    "byte stream = SHA-256(b'scanseal-vector:' + decimal counter) for counter 0, 1, 2, ..., "
    "concatenated and cut to the size"
)
VECTORS = Path(__file__).resolve().parent / "vectors" / "golden_cids.json"


def vector_stream(size: int) -> Iterator[bytes]:
    """The content of a vector, 1 MiB at a time (32-byte digests, concatenated)."""
    counter = 0
    left = size
    while left:
        block = bytearray()
        while len(block) < min(left, 1 << 20):
            block += hashlib.sha256(b"scanseal-vector:%d" % counter).digest()
            counter += 1
        piece = bytes(block[: min(left, 1 << 20)])
        left -= len(piece)
        yield piece


def write_vectors(base: Path) -> list[Path]:
    paths = []
    for name, size in SIZES.items():
        path = base / f"{name}.bin"
        with open(path, "wb") as out:
            for piece in vector_stream(size):
                out.write(piece)
        paths.append(path)
    return paths


def importer_cids(paths: list[Path]) -> dict[Path, str]:
    """CIDs from npm ipfs-unixfs-importer with its defaults, via tools/ipfs/importer-cid.mjs."""
    done = subprocess.run(
        ["node", str(IMPORTER_SCRIPT), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = {}
    for line in done.stdout.splitlines():
        cid, path = line.split(" ", 1)
        out[Path(path)] = cid
    return out


def tool_versions() -> dict[str, str]:
    lock = json.loads((TOOLS / "package-lock.json").read_text())
    packages = lock["packages"]
    return {
        name: packages[f"node_modules/{name}"]["version"]
        for name in ("ipfs", "ipfs-core", "ipfs-unixfs-importer")
        if f"node_modules/{name}" in packages
    }


def load() -> list[dict[str, object]]:
    vectors: list[dict[str, object]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors
