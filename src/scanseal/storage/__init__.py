"""Content-addressed storage for sealed envelopes: embedded, on IPFS nodes, or replicated.

The public surface is small::

    store = open_store()                 # embedded by default, per scanseal.toml / env otherwise
    cid = store.put(stream)              # kubo's `ipfs add --cid-version=1` CID, base32
    with store.get(cid) as verified:     # every block re-hashed before a byte is returned
        ...

``open_store`` returns an :class:`EmbeddedStore` (``$SCANSEAL_HOME/blocks``) unless the
configuration selects ``backend = "kubo"``, in which case it returns a
:class:`ReplicatedStore` over the configured nodes, which keeps a local copy too and
replicates each put before it returns (``replicate = "sync"``, the default) or from a durable
local queue in the background (``replicate = "queued"``; ``ReplicatedStore.lag()`` shows how
far behind).
"""

from __future__ import annotations

from scanseal.storage._api import BlobStore, ObjectStat, StoreUsage
from scanseal.storage._builder import CHUNK_SIZE, MAX_LINKS, Readable
from scanseal.storage._car import export_car, import_car
from scanseal.storage._cid import CID
from scanseal.storage._config import StorageConfig, load_config
from scanseal.storage._embedded import EmbeddedStore
from scanseal.storage._kubo import KuboNode
from scanseal.storage._queue import NodeLag, ReplicationLag
from scanseal.storage._replicated import NodeHealth, NodeOutcome, PutReport, ReplicatedStore


def cid_of(stream: Readable) -> str:
    """The CID ``put`` would return for these bytes, computed without storing anything."""
    from scanseal.storage._builder import build

    return str(build(stream)[0])


def open_store(config: StorageConfig | None = None, *, background: bool = True) -> BlobStore:
    """Open the configured store (see docs/STORAGE.md); embedded when nothing is configured.

    ``background=False``: no replicator thread (a command that only reads or reports, and so
    should neither push anything nor wait at close for a queue to drain)."""
    config = config if config is not None else load_config()
    queued = config.backend == "kubo" and config.replicate == "queued"
    local = EmbeddedStore(config.block_root(), durable=queued)
    if config.backend == "embedded":
        return local
    nodes = [
        KuboNode(url, timeout=config.timeout, connect_timeout=config.connect_timeout)
        for url in config.nodes
    ]
    try:
        return ReplicatedStore(
            local,
            nodes,
            min_replicas=config.min_replicas,
            retries=config.retries,
            backoff=config.backoff,
            replicate=config.replicate,
            drain_seconds=config.drain_seconds,
            max_lag_seconds=config.max_lag_seconds,
            background=background,
        )
    except BaseException:
        local.close()
        raise


__all__ = [
    "CHUNK_SIZE",
    "CID",
    "MAX_LINKS",
    "BlobStore",
    "EmbeddedStore",
    "KuboNode",
    "NodeHealth",
    "NodeLag",
    "NodeOutcome",
    "ObjectStat",
    "PutReport",
    "Readable",
    "ReplicatedStore",
    "ReplicationLag",
    "StorageConfig",
    "StoreUsage",
    "cid_of",
    "export_car",
    "import_car",
    "load_config",
    "open_store",
]
