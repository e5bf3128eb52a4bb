"""``scanseal send``, ``inbox``, ``fetch``, ``grant`` and ``revoke``: studies through a gateway.

``send`` groups files and directories (walked recursively) by Study Instance UID, sends each
instance at most once (``transfer.study``'s send log) and says what became of each instance
and study. ``inbox`` lists the studies shared with the caller (``transfer.catalogue``);
``fetch``, ``grant`` and ``revoke`` take records, or a study by its UID or its study record's
CID (grant and revoke: one ledger transaction on the study record for the whole study)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scanseal._cli._common import (
    AsName,
    BurnedInOption,
    CaOption,
    GatewayOption,
    KeepOption,
    act_on_study_or_records,
    connect,
    deidentified,
    refuse,
    study_bars,
    study_listing,
    study_records,
    study_uid_of,
    warn_if_flagged,
    warn_undescribed,
)
from scanseal.crypto.identity import IdentityCard
from scanseal.errors import GatewayUnavailable, InvalidInput, ScanSealError
from scanseal.transfer.catalogue import Described, already_fetched, is_study_uid, study_path

if TYPE_CHECKING:  # the client pulls in httpx: import it only when talking to a gateway
    from rich.progress import Progress

    from scanseal.client import GatewayClient, StudyFetcher
    from scanseal.transfer import OpenedFile
    from scanseal.transfer.study import Instance, Sent, StudySender, StudyTally

_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def send(
    sources: Annotated[
        list[Path], typer.Argument(metavar="DIR|FILE...", help="Studies: files or directories.")
    ],
    to: Annotated[list[Path], typer.Option("--to", help="Recipient identity card (repeatable).")],
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Where the sealed envelopes and the send log are kept "
            "(default: $SCANSEAL_HOME/outbox).",
        ),
    ] = None,
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
    deid_key: Annotated[
        Path | None,
        typer.Option(
            "--deid", help="De-identify first with this key file (tokens: WORKDIR/tokens)."
        ),
    ] = None,
    keep: KeepOption = None,
    allow_burned_in: BurnedInOption = False,
) -> None:
    """Seal each instance here and upload it, study by study: one record per instance.

    Directories are walked recursively; each study gets a summary line and a signed manifest.

    What an earlier send registered (the send log in WORKDIR, by default
    $SCANSEAL_HOME/outbox) is not sent again.

    An instance that fails is named, and the others are still sent.

    Then, on stderr, each recipient's card fingerprint, to compare with what they read out."""
    from scanseal.config import scanseal_home
    from scanseal.transfer.study import expand

    if workdir is None:  # one place per home, so a re-run from anywhere skips what was sent
        workdir = scanseal_home() / "outbox"
        workdir.mkdir(mode=0o700, exist_ok=True)
    files = expand(sources)
    cards = [IdentityCard.load(path) for path in to]
    with deidentified(files, deid_key, keep, workdir, allow_burned_in) as sending:
        _send(sending, cards, workdir, connect(gateway, ca, as_name))


def _send(
    files: list[Path], cards: list[IdentityCard], workdir: Path, client: GatewayClient
) -> None:
    from scanseal.transfer.study import StudySender

    if client.identity is None:
        raise InvalidInput("sending needs an identity (--as NAME)")
    total = sum(path.stat().st_size for path in files)
    unread: list[ScanSealError] = []
    with client, StudySender(client, client.identity, cards, workdir) as sender, study_bars() as p:
        bar = _Bar(p, f"sending {len(files)} file(s)", total)
        tallies = _send_each(sender, files, bar, unread)
        for tally in tallies:
            _summarize(sender, tally)
    for card in cards:
        _err.print(f"sealed for {card.name}  fingerprint {card.fingerprint}", markup=False)
    failed = unread + [_named(path, error) for t in tallies for path, error in t.failed]
    if len(failed) > 1:
        _err.print(f"{len(failed)} of {len(files)} file(s) not sent:", markup=False)
    refuse(failed)


class _Bar:
    """One bar over every file's bytes, with rate and time left (on a terminal only)."""

    def __init__(self, progress: Progress, label: str, total: int) -> None:
        self._progress, self.done = progress, 0
        self._task = progress.add_task(label, total=total)

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def finish(self, size: int) -> None:
        """A file is done (sent, skipped or failed): the bar counts exactly its size."""
        self.done += size
        self._progress.update(self._task, completed=self.done)


def _send_each(
    sender: StudySender, files: list[Path], bar: _Bar, unread: list[ScanSealError]
) -> list[StudyTally]:
    """Ingest each file in turn and seal it in one of ``SEALS_AT_ONCE`` threads while the
    ones before it upload (``UPLOADS_IN_FLIGHT`` at once), then let it go; one tally per
    study, in the order met, and each instance's line in file order. A file ingest refuses
    goes to ``unread``, naming it; a gateway that stops answering ends the whole send (the
    next instance would meet the same)."""
    from concurrent.futures import ThreadPoolExecutor

    from scanseal.transfer.study import SEALS_AT_ONCE, UPLOADS_IN_FLIGHT, Instance, StudyTally

    tallies: dict[str | None, StudyTally] = {}
    window: deque[_Upload] = deque()
    seals = ThreadPoolExecutor(SEALS_AT_ONCE, thread_name_prefix="seal")
    uploads = ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="upload")
    stages = _Stages(sender, uploads, bar.advance)
    try:
        for path in files:
            try:
                instance = Instance.read(path)
            except ScanSealError as error:
                unread.append(_named(path, error))
                bar.finish(path.stat().st_size)
                continue
            tally = tallies.setdefault(instance.study, StudyTally(instance.study))
            stages.warm(instance)
            name = sender.envelope_name(path)  # in file order, whichever thread seals first
            window.append(_Upload(path, tally, seals.submit(stages.seal, instance, name)))
            while len(window) > SEALS_AT_ONCE + UPLOADS_IN_FLIGHT:
                window.popleft().collect(bar)
        while window:
            window.popleft().collect(bar)
    finally:  # on an error, what is queued is dropped (a pending row is asked about next time)
        seals.shutdown(wait=True, cancel_futures=True)
        uploads.shutdown(wait=True, cancel_futures=True)
    return list(tallies.values())


class _Stages:
    """What a seal thread does with one instance: seal it, then hand it to an upload thread."""

    def __init__(
        self, sender: StudySender, uploads: Executor, progress: Callable[[int], None]
    ) -> None:
        self.sender, self.uploads, self.progress = sender, uploads, progress
        self._warm = False

    def warm(self, instance: Instance) -> None:
        """Load the detector once, before two seal threads would each load it."""
        if not self._warm and instance.image.has_pixels:
            from scanseal.detect import default_detector

            default_detector()
            self._warm = True

    def seal(self, instance: Instance, name: str) -> Future[Sent]:
        """``instance`` sealed and logged pending (or found sent before), its upload started."""
        ready = self.sender.prepare(instance, progress=self.progress, name=name)
        return self.uploads.submit(self.sender.finish, ready)


@dataclass
class _Upload:
    """An instance handed to a seal thread, then to an upload thread, collected in file
    order."""

    path: Path
    tally: StudyTally
    future: Future[Future[Sent]]

    def collect(self, bar: _Bar) -> None:
        """Wait for the seal and the upload; its line, or its failure in the study's tally."""
        try:
            sent = self.future.result().result()
        except GatewayUnavailable:
            raise
        except ScanSealError as error:
            self.tally.failed.append((self.path, error))
            return
        finally:
            bar.finish(self.path.stat().st_size)
        self.tally.add(sent)
        if sent.manifest is not None:
            warn_if_flagged(sent.manifest, self.path.name)
        again = "  (already sent)" if sent.skipped else ""
        _out.print(f"{self.path.name}  record {sent.record}{again}", markup=False)


def _summarize(sender: StudySender, tally: StudyTally) -> None:
    """A study's summary line, and its signed manifest when every instance was registered."""
    if tally.study is None:
        return  # PNG and JPEG: no study
    counts = f"{len(tally.records) - tally.skipped} sent, {tally.skipped} already sent, "
    counts += f"{len(tally.failed)} failed"
    _out.print(f"study {tally.study}: {tally.count} instance(s), {counts}", markup=False)
    if not tally.failed:
        path, study_cid = sender.seal_study(tally.study, tally.records)
        line = f"study {tally.study}: registered as study {study_cid}, manifest {path}"
        _out.print(line, markup=False)
    elif tally.records:  # their grants wait for the study record (transfer.study)
        line = f"study {tally.study}: not registered; its recipients may read none of it "
        _out.print(line + "until a send of the whole study completes", markup=False)


def _named(path: Path, error: ScanSealError) -> ScanSealError:
    """``error`` with its reason naming ``path`` (ingest's reasons already start with it)."""
    if error.reason.startswith(path.name):
        return error
    named = type(error)(f"{path}: {error.reason}")
    named.exit_code = error.exit_code
    return named


def inbox(
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the studies as JSON.")] = False,
) -> None:
    """List the studies shared with you: patient, date, modality, sender, instances, warnings.

    Each new record is fetched once to read what it is (a logged fetch, like any other).

    What it is stays in your home ($SCANSEAL_HOME/catalogue), so the next listing is quick."""
    from scanseal.config import scanseal_home
    from scanseal.transfer.catalogue import Catalogue

    with connect(gateway, ca, as_name) as client:
        if client.identity is None:
            raise InvalidInput("the inbox needs an identity (--as NAME)")
        with Catalogue.of(scanseal_home(), client.identity.address) as catalogue:
            warn_undescribed(catalogue.refresh(client))
            studies = catalogue.studies()
    if json_out:
        _out.print(json.dumps(studies, indent=2), markup=False)
        return
    table = Table(title=f"{len(studies)} study(ies) shared with you", title_justify="left")
    for column in ("study", "patient", "date", "modality", "sender", "instances", "warnings"):
        table.add_column(column, overflow="fold")
    for study in studies:
        patient = " ".join(str(v) for v in (study["patient_name"], study["patient_id"]) if v)
        table.add_row(
            str(study["study"] or "(no study: PNG/JPEG)"), patient or "-",
            str(study["study_datetime"] or "-"), ", ".join(study["modalities"]) or "-",
            ", ".join(study["senders"]), str(study["instances"]),
            "\n".join(study["warnings"]) or "-",
        )  # fmt: skip
    _out.print(table)


def fetch(
    records: Annotated[
        list[str], typer.Argument(metavar="STUDY|RECORD...", help="Study Instance UIDs or CIDs.")
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Directory (studies, several records) or file."),
    ],
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
    to_pacs: Annotated[
        str | None,
        typer.Option("--to-pacs", help="Then C-STORE the opened instances to AET@HOST:PORT."),
    ] = None,
    calling_ae: Annotated[
        str, typer.Option("--calling-ae", help="Our AE title towards the PACS.")
    ] = "SCANSEAL",
) -> None:
    """Fetch records by signed request, check every hash, decrypt; nothing written on failure.

    A study (its UID or its record's CID) goes to DIR/<Study UID>/<Series UID>/<SOP UID>.dcm.

    A file already there with the sealed bytes is kept, so an interrupted fetch resumes."""
    studies = [r for r in records if is_study_uid(r)]
    if studies and len(studies) != len(records):
        raise InvalidInput("fetch either studies (UIDs) or records (CIDs), not both at once")
    destination = None
    if to_pacs is not None:
        from scanseal.dicom.forward import Destination

        destination = Destination.parse(to_pacs)
    with connect(gateway, ca, as_name) as client:
        single = len(records) == 1 and not studies  # a UID is no study record's CID
        listed = study_listing(client, records[0]) if single else set()
        if studies or listed:  # a study record's CID (as send prints it) is fetched as its study
            opened = _fetch_studies(client, studies, output, listed)
        else:
            opened = _fetch(client, records, output)
    if destination is not None:
        from scanseal.dicom.forward import forward

        sent = forward(opened, destination, calling_ae)
        _out.print(f"forwarded {sent} instance(s) to {destination}")


def _fetch(client: GatewayClient, records: list[str], output: Path) -> list[Path]:
    opened_paths: list[Path] = []
    with study_bars() as p:
        task = p.add_task(f"fetching {len(records)} record(s)", total=len(records))
        for record in records:
            target = output / record if len(records) > 1 or output.is_dir() else output
            opened = client.fetch(record, target)
            warn_if_flagged(opened.manifest, record)
            opened_paths.append(opened.path)
            p.advance(task, 1)
            _out.print(f"{record} -> {opened.path}  (verified against manifest and ledger)")
    return opened_paths


def _opened(opened: OpenedFile, entry: Described, target: Path) -> None:
    warn_if_flagged(opened.manifest, entry.sop or entry.record)
    _out.print(f"{entry.record} -> {target}  (verified against manifest and ledger)")


def _fetch_studies(
    client: GatewayClient, studies: list[str], output: Path, listed: set[str]
) -> list[Path]:
    """``studies`` by UID, or the one study whose instance records are ``listed``."""
    if output.exists() and not output.is_dir():
        raise InvalidInput(f"{output} is not a directory: a study is fetched into one")
    paths: list[Path] = []
    failed: list[ScanSealError] = []
    from scanseal.client import StudyFetcher

    via = StudyFetcher(client, studies, output, listed, _opened)
    try:
        for study in studies or [study_uid_of(client, listed, via)]:
            paths += _fetch_study(client, study, output, via, failed)
    finally:
        via.close()
    refuse(failed)
    return paths


def _fetch_study(
    client: GatewayClient,
    study: str,
    output: Path,
    via: StudyFetcher,
    failed: list[ScanSealError],
) -> list[Path]:
    """One study into ``output``: what the catalogue opened while describing, then the rest
    (``FETCHES_AHEAD`` at once), each line in the catalogue's order; an instance that could
    not be opened is named in ``failed`` and the others are still fetched."""
    from scanseal.client import FETCHES_AHEAD

    paths: list[Path] = []
    entries = study_records(client, study, owned=False, via=via)
    kept, lost = 0, []
    window: deque[tuple[Described, Path, Future[OpenedFile]]] = deque()
    with study_bars() as p:
        task = p.add_task(f"fetching study {study}", total=len(entries))

        def collect(entry: Described, target: Path, opening: Future[OpenedFile]) -> None:
            try:
                _opened(opening.result(), entry, target)
                paths.append(target)
            except GatewayUnavailable:
                raise
            except ScanSealError as error:
                lost.append(_instance_error(entry, target, error))
            p.advance(task, 1)

        for entry in entries:
            target = study_path(output, entry)
            error = via.failed.get(entry.record)
            if error is not None:
                lost.append(_instance_error(entry, target, error))
            elif entry.record in via.opened:
                paths.append(target)  # opened while the catalogue described it
            elif already_fetched(target, entry):
                kept += 1
                paths.append(target)
            else:
                window.append((entry, target, via.open_later(entry, target)))
                while len(window) > FETCHES_AHEAD:
                    collect(*window.popleft())
                continue
            p.advance(task, 1)
        while window:
            collect(*window.popleft())
    counts = f"{len(paths) - kept} fetched, {kept} already here"
    counts += f", {len(lost)} failed" if lost else ""
    _out.print(f"study {study}: {len(entries)} instance(s), {counts} -> {output / study}",
               markup=False)  # fmt: skip
    failed += lost
    return paths


def _instance_error(entry: Described, target: Path, error: ScanSealError) -> ScanSealError:
    """``error`` naming the instance (its record and where it was to be written)."""
    named = type(error)(f"{entry.record} -> {target}: {error.reason}")
    named.exit_code = error.exit_code
    return named


def grant(
    record: Annotated[
        str, typer.Argument(metavar="STUDY|RECORD", help="A study or record you own.")
    ],
    to: Annotated[Path, typer.Option("--to", help="Identity card of the new recipient.")],
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
) -> None:
    """Re-wrap a record's key for one more recipient and grant access on the ledger.

    For a study: its study record, one ledger transaction that opens every instance it lists
    (each instance's key is re-wrapped); a study sent without one (not all of it arrived):
    each of its instance records that you own."""
    card = IdentityCard.load(to)
    with connect(gateway, ca, as_name) as client:
        act_on_study_or_records(
            client, record, f"granted {card.name} ({card.address})",
            lambda study: _transactions(client.grant_study(study, card)),
            lambda cid: f"; grant {client.grant(cid, card)['grant_cid']}",
        )  # fmt: skip


def revoke(
    record: Annotated[
        str, typer.Argument(metavar="STUDY|RECORD", help="A study or record you own.")
    ],
    grantee: Annotated[str, typer.Option("--from", help="Address or card file to revoke.")],
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
) -> None:
    """Stop future releases of a record to a grantee (what it downloaded stays with it).

    For a study: its study record (one ledger transaction), and the grantee's own grants on
    its instances if it holds any; a study sent without one: each instance record you own."""
    address = IdentityCard.load(Path(grantee)).address if Path(grantee).is_file() else grantee
    with connect(gateway, ca, as_name) as client:

        def whole(study: str) -> int:
            return _transactions(client.revoke_study(study, address))

        def one(cid: str) -> str:
            client.revoke(cid, address)
            return ""

        act_on_study_or_records(client, record, f"revoked {address}", whole, one)


def _transactions(answer: dict[str, Any]) -> int:
    """How many ledger writes a study grant or revocation made (none: it held already)."""
    return (answer.get("ledger") is not None) + int(answer.get("instances_revoked", 0))


def register(app: typer.Typer) -> None:
    for name, command in (
        ("send", send),
        ("inbox", inbox),
        ("fetch", fetch),
        ("grant", grant),
        ("revoke", revoke),
    ):
        app.command(name)(command)
