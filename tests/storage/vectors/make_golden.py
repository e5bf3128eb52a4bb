"""Regenerate golden_cids.json from real tools: a js-ipfs node and npm ipfs-unixfs-importer.

Run from the repository root: ``python tests/storage/vectors/make_golden.py``. The content of
each vector is :func:`vector_bytes`, a SHA-256 counter stream, so nothing large is committed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parents[2] / "src"))

from scanseal.storage import KuboNode  # noqa: E402
from storage import jsipfs  # noqa: E402
from storage import storage_golden as golden  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = golden.write_vectors(base)
        importer = golden.importer_cids(files)
        daemon = jsipfs.start(base, "golden")
        try:
            node = KuboNode(daemon.url)
            vectors = []
            for (name, size), path in zip(golden.SIZES.items(), files, strict=True):
                with open(path, "rb") as handle:
                    by_node = node.add(iter(lambda h=handle: h.read(1 << 20), b""))
                if by_node != importer[path]:
                    raise SystemExit(f"{name}: js-ipfs {by_node} != importer {importer[path]}")
                vectors.append({"name": name, "size": size, "cid": by_node})
        finally:
            daemon.stop()
    document = {
        "content": golden.CONTENT_RULE,
        "tools": golden.tool_versions(),
        "vectors": vectors,
    }
    (HERE / "golden_cids.json").write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
