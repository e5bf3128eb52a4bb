"""``scanseal storage add|get|status`` and ``scanseal car export|import``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from scanseal._cli._common import ConfigOption
from scanseal._disk import disk_error, staged_files
from scanseal.errors import InvalidInput, ScanSealError, StorageUnavailable
from scanseal.storage import (
    CID,
    BlobStore,
    EmbeddedStore,
    ReplicatedStore,
    export_car,
    import_car,
    load_config,
    open_store,
)

storage_app = typer.Typer(help="Store and fetch content-addressed objects.", no_args_is_help=True)
car_app = typer.Typer(help="Exchange objects with any IPFS node as CAR v1.", no_args_is_help=True)
# Wide when piped, so CIDs in tables stay whole for scripts and logs.
_out = Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 200)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

_OUTPUT = typer.Option(..., "-o", "--output", help="File to write (replaced only on success).")


def register(app: typer.Typer) -> None:
    """Attach both groups to the root command."""
    app.add_typer(storage_app, name="storage")
    app.add_typer(car_app, name="car")


def _open(config: Path | None, *, background: bool = False) -> BlobStore:
    """The configured store; ``background``: with its replicator (commands that write)."""
    return open_store(load_config(config), background=background)


def _local(store: BlobStore) -> EmbeddedStore:
    if isinstance(store, ReplicatedStore):
        return store.local
    assert isinstance(store, EmbeddedStore)
    return store


def _input(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file")
    return path


@storage_app.command("add")
def add(file: Path, config: ConfigOption = None) -> None:
    """Store FILE as it is, unencrypted, and print its CID (as kubo's `ipfs add --cid-version=1`).

    For images use `scanseal seal` or `scanseal send`: they encrypt before anything is stored."""
    with _open(config, background=True) as store, open(_input(file), "rb") as source:
        cid = store.put(source)
        if isinstance(store, ReplicatedStore) and store.last_report is not None:
            for failure in store.last_report.failures:
                _err.print(f"warning: replica not made: {failure.error}", markup=False)
        if isinstance(store, ReplicatedStore) and store.mode == "queued":
            _report_queued(store, cid)
    _err.print(f"warning: {_plaintext_warning(file)}", markup=False)
    typer.echo(cid)


def _report_queued(store: ReplicatedStore, cid: str) -> None:
    """Give the replicator ``drain_seconds``; say so when the object is still queued after."""
    store.drain(store.drain_seconds)
    store.drain_seconds = 0.0  # waited already: close need not wait again
    if cid not in store.queue.queued():
        return
    lag = store.lag()
    why = "; ".join(f"{n.node}: {n.last_error}" for n in lag.nodes) or "not pushed yet"
    _err.print(
        f"warning: {cid} is stored locally and queued for replication ({why}); the next "
        "`scanseal serve` or `scanseal storage drain` on this store pushes it",
        markup=False,
    )


def _plaintext_warning(file: Path) -> str:
    """One line: FILE is stored unencrypted, and what it is when that makes it worse (a DICOM
    file naming its patient, an image), so nobody puts PHI in the clear without a word."""
    from scanseal.ingest import detect_format, read_metadata

    what = ""
    try:
        kind = detect_format(file)
        if kind != "dicom":
            what = f", a {kind.upper()} image,"
        else:
            meta = read_metadata(file)
            found = (("PatientName", meta.patient_name), ("PatientID", meta.patient_id))
            named = ", ".join(keyword for keyword, value in found if value)
            what = f", a DICOM file with patient data ({named})," if named else ", a DICOM file,"
    except InvalidInput:
        pass  # not an image ScanSeal reads: the plain warning
    return (
        f"{file.name}{what} is stored unencrypted: whoever reads this store or fetches the CID "
        "reads it; use `scanseal seal` or `scanseal send` for images"
    )


@storage_app.command("get")
def get(
    cid: str,
    output: Path = _OUTPUT,
    config: ConfigOption = None,
) -> None:
    """Fetch CID, verify every block, and write the content to OUTPUT (mode 0600)."""
    CID.parse(cid)
    with (
        _open(config) as store,
        staged_files(output, on_error=_naming_output) as (partial,),
        store.get(cid) as source,
        open(partial, "wb") as sink,
    ):
        shutil.copyfileobj(source, sink, 1 << 20)


def _naming_output(error: OSError, final: Path) -> ScanSealError:
    """Name the file asked for, not the temporary beside it."""
    return disk_error(error, final, instead=True)


@storage_app.command("status")
def status(config: ConfigOption = None) -> None:
    """Show each node's health, the replication queue's lag and each object's replicas."""
    with _open(config) as store:
        pins = store.pins()
        queued: set[str] = set()
        if isinstance(store, ReplicatedStore):
            _node_table(store)
            _lag_table(store)
            replicas = store.replica_map(pins)
            queued = set(store.queue.queued())
        else:
            _out.print(f"backend: embedded ({_local(store).root}); no nodes configured")
            replicas = {cid: [] for cid in pins}
        objects = Table("object", "size", "replicas", "nodes", "queue", title="Objects")
        objects.columns[0].overflow = "fold"
        for cid in pins:
            stat = _local(store).stat(cid)
            held = replicas[cid]
            mark = "queued" if cid in queued else "-"
            objects.add_row(cid, f"{stat.size}", f"{len(held)}", ", ".join(held) or "-", mark)
        _out.print(objects)


def _lag_table(store: ReplicatedStore) -> None:
    """The replication queue: mode, objects waiting, the oldest wait, failing nodes."""
    lag = store.lag()
    oldest = "-" if lag.oldest_seconds is None else f"{lag.oldest_seconds:.1f} s"
    _out.print(f"replicate: {lag.mode}")
    _out.print(f"queued objects: {lag.queued}  oldest: {oldest}")
    if lag.nodes:
        table = Table("node", "objects failing", "failures", "last error", title="Queue")
        for node in lag.nodes:
            table.add_row(node.node, f"{node.failing_objects}", f"{node.failures}",
                          node.last_error)  # fmt: skip
        _out.print(table)


@storage_app.command("drain")
def drain(
    timeout: float = typer.Option(60.0, "--timeout", min=0, help="Seconds to wait at most."),
    config: ConfigOption = None,
) -> None:
    """Push what the replication queue holds until min_replicas nodes confirm each object.

    Exit 0 when the queue is empty, 5 (storage unavailable) when objects are still queued."""
    with _open(config, background=True) as store:
        if not isinstance(store, ReplicatedStore):
            raise InvalidInput("the embedded backend has no nodes and no replication queue")
        store.drain_seconds = 0.0
        if not store.drain(timeout):
            lag = store.lag()
            why = "; ".join(f"{n.node}: {n.last_error}" for n in lag.nodes) or "no node took it"
            raise StorageUnavailable(
                f"{lag.queued} object(s) still queued after {timeout:g} s ({why})"
            )
    typer.echo("replication queue empty")


def _node_table(store: ReplicatedStore) -> None:
    table = Table("node", "health", "version", "latency", title="Nodes")
    for node in store.health():
        health = "up" if node.up else f"DOWN: {node.error}"
        latency = f"{node.latency_ms:.0f} ms" if node.up else "-"
        table.add_row(node.node, health, node.version or "-", latency)
    _out.print(table)
    _out.print(f"min_replicas: {store.min_replicas}")


@car_app.command("export")
def car_export(
    cid: str,
    output: Path = _OUTPUT,
    config: ConfigOption = None,
) -> None:
    """Write the object CID and all its blocks as a CAR v1 file (mode 0600, unencrypted)."""
    with _open(config) as store:
        local = _local(store)
        if not local.has(cid):
            raise InvalidInput(f"{cid} is not complete in the local store")
        with (
            staged_files(output, on_error=_naming_output) as (partial,),
            open(partial, "wb") as sink,
        ):
            for piece in export_car(local, cid):
                sink.write(piece)


@car_app.command("import")
def car_import(file: Path, config: ConfigOption = None) -> None:
    """Verify and store every block of a CAR v1 file; print its root CIDs."""
    with _open(config) as store, open(_input(file), "rb") as source:
        roots = import_car(_local(store), source)
    sys.stdout.write("".join(f"{root}\n" for root in roots))
