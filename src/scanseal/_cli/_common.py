"""What the command groups share: unlocking an identity, the common options, progress bars, the
gateway connection, the forwarding agent, de-identification before a send and the warning for
an image the tamper screen flagged at sealing.

Every module of ``scanseal._cli`` imports its shared helpers from here and from the library
packages, never from another command module, so the command modules form no import cycle.

The passphrase comes from the root ``--passphrase-file`` or ``--passphrase-fd`` when given
(``scanseal._passphrase``), else from ``$SCANSEAL_PASSPHRASE`` when set (scripts, CI),
otherwise from a hidden prompt on the terminal; prompts go to stderr so a command's stdout stays
clean for pipes.
The gateway URL comes from ``--gateway`` or ``$SCANSEAL_GATEWAY_URL``; a private CA certificate
for TLS from ``--ca`` or ``$SCANSEAL_GATEWAY_CA``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from scanseal import _passphrase
from scanseal.config import PASSPHRASE_ENV, passphrase_from_env
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import InvalidInput, NotFound, ScanSealError
from scanseal.storage import CID
from scanseal.transfer import flag_warning

if TYPE_CHECKING:  # the client pulls in httpx, the agent pynetdicom: import them when used
    from scanseal.client import GatewayClient
    from scanseal.dicom.agent import ForwardAgent, ForwardConfig
    from scanseal.dicom.deid_files import Written
    from scanseal.transfer import Manifest
    from scanseal.transfer import Progress as ProgressCallback
    from scanseal.transfer.catalogue import Described, InboxGateway

IDENTITY_ENV = "SCANSEAL_IDENTITY"
URL_ENV = "SCANSEAL_GATEWAY_URL"
CA_ENV = "SCANSEAL_GATEWAY_CA"
_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

AsName = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Your identity in the keystore (default: $SCANSEAL_IDENTITY, or the only one there).",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="scanseal.toml (default: $SCANSEAL_CONFIG, else $SCANSEAL_HOME/scanseal.toml).",
    ),
]
GatewayOption = Annotated[
    str | None, typer.Option("--gateway", help=f"Gateway URL (default: ${URL_ENV}).")
]
CaOption = Annotated[
    Path | None, typer.Option("--ca", help=f"CA certificate of the gateway (default: ${CA_ENV}).")
]
KeepOption = Annotated[
    list[str] | None,
    typer.Option(
        "--keep",
        help="A PS3.15 Retain option (repeatable): dates (Retain Longitudinal Temporal "
        "Information with Modified Dates: the keyed shift), patient (characteristics), device "
        "(identity), uids, full-dates, institution (identity).",
    ),
]
BurnedInOption = Annotated[
    bool,
    typer.Option(
        "--allow-burned-in",
        help="De-identify instances whose pixels may show text (BurnedInAnnotation YES, or "
        "absent on US, SC, OT, XC images) as they are: you checked the pixels yourself.",
    ),
]


# --- identities ------------------------------------------------------------------------------


def read_passphrase(name: str, *, confirm: bool = False) -> str:
    """The passphrase for ``name``: ``--passphrase-file`` or ``--passphrase-fd`` first, then the
    environment, else a hidden prompt on stderr."""
    from_option = _passphrase.chosen()
    if from_option is not None:
        return from_option
    from_env = passphrase_from_env()
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():  # getpass would fall back to echoing input and warn about it
        raise InvalidInput(
            f"a passphrase for {name} is needed: give scanseal --passphrase-file PATH, "
            f"set {PASSPHRASE_ENV} or use a terminal"
        )
    prompt = f"Passphrase for {name}"
    answer = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return str(answer)


def unlock_identity(name: str, keystore: Keystore | None = None) -> Identity:
    """Load and decrypt identity ``name``; the one way every command gets private keys."""
    store = keystore if keystore is not None else Keystore()
    store.card(name)  # fail on an unknown or corrupt name before asking for a passphrase
    return store.load(name, read_passphrase(name))


def identity_name(name: str | None) -> str:
    """Resolve ``--as``: explicit, then the environment, then the keystore's only identity."""
    if name:
        return name
    if env := os.environ.get(IDENTITY_ENV):
        return env
    names = Keystore().names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise InvalidInput("no identity in the keystore: run 'scanseal keys new NAME' first")
    raise InvalidInput(f"several identities ({', '.join(names)}): choose one with --as NAME")


def unlock(name: str | None) -> Identity:
    """The identity ``--as`` names (see :func:`identity_name`), unlocked."""
    return unlock_identity(identity_name(name))


def warn_if_flagged(manifest: Manifest, subject: str) -> None:
    """``warning: SUBJECT: flagged by the tamper screen at sealing (...)`` on stderr when the
    signed manifest says so; stdout, what scripts read, stays as it was."""
    line = flag_warning(manifest, subject)
    if line is not None:
        _err.print(f"warning: {line}", markup=False)


def refuse(problems: Sequence[ScanSealError], exit_code: int | None = None) -> None:
    """Nothing when there are no problems; else each one as its own ``error:`` line on stderr
    (the last one raised, shown as every error is), exit ``exit_code``, by default the first
    one's."""
    if not problems:
        return
    for problem in problems[:-1]:
        _err.print(f"error: {problem.reason}", markup=False)
    last = ScanSealError(problems[-1].reason)
    last.exit_code = problems[0].exit_code if exit_code is None else exit_code
    raise last


# --- progress --------------------------------------------------------------------------------


@contextmanager
def byte_bar(label: str, total: int) -> Iterator[ProgressCallback]:
    """A Rich progress bar of one file's bytes on stderr, shown only when stderr is a terminal."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def study_bars() -> Iterator[Progress]:
    """One overall bar for a study (bytes over every image, rate, time left), on stderr when it
    is a terminal."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as p:
        yield p


# --- the gateway and the forwarding agent ----------------------------------------------------


def connect(gateway: str | None, ca: Path | None, as_name: str | None) -> GatewayClient:
    """A client for ``gateway`` acting as ``as_name`` (unlocked), or anonymous when ``-``."""
    url = gateway or os.environ.get(URL_ENV)
    if not url:
        raise InvalidInput(f"name the gateway with --gateway URL or ${URL_ENV}")
    ca_file = ca if ca is not None else (Path(os.environ[CA_ENV]) if CA_ENV in os.environ else None)
    identity = unlock(as_name) if as_name != "-" else None
    with _without_trio():
        from scanseal.client import GatewayClient

        return GatewayClient(url, identity, ca=ca_file)


@contextmanager
def _without_trio() -> Iterator[None]:
    """httpcore, which httpx loads when its first client is built, imports trio whenever it is
    installed, for async code running under trio: about 0.1 s of CPU at every command start
    (``python -c "import trio"``, 0.12 s; httpx with and without it, 0.19 and 0.12 s). The
    gateway client is synchronous, so while httpcore loads here ``import trio`` fails as if
    trio were absent; afterwards trio imports normally again. Once httpcore is loaded
    (by an earlier client in the same process) nothing changes."""
    blocked = "httpcore" not in sys.modules and "trio" not in sys.modules
    if blocked:
        sys.modules["trio"] = None  # type: ignore[assignment]  # Python's "not importable"
    try:
        yield
    finally:
        if blocked:
            del sys.modules["trio"]


def study_records(
    client: GatewayClient, study: str, *, owned: bool, via: InboxGateway | None = None
) -> list[Described]:
    """The records of ``study`` shared with the caller (``owned``: that it uploaded), from its
    catalogue brought up to date with its inbox first (through ``via`` when given, which may
    do more with each record it describes); NotFound when there are none."""
    from scanseal.config import scanseal_home
    from scanseal.transfer.catalogue import Catalogue

    if client.identity is None:
        raise InvalidInput("a study needs an identity (--as NAME)")
    me = client.identity.address
    with Catalogue.of(scanseal_home(), me) as catalogue:
        warn_undescribed(catalogue.refresh(via or client))
        entries = catalogue.records(study)
    if owned:
        entries = [e for e in entries if e.sender_address == me]
    if not entries:
        whose = "that you own" if owned else "shared with you"
        raise NotFound(f"no records of study {study} {whose} at {client.url}")
    return entries


def study_records_named(client: GatewayClient, record: str) -> list[dict[str, Any]]:
    """The study records ``record`` names: the caller's of a Study UID, or ``record`` itself
    when it is a study record (the CID ``send`` printed for a study); none for an instance
    record or a study without one (then each record is acted on)."""
    from scanseal.transfer.catalogue import is_study_uid

    if is_study_uid(record):
        return client.studies_of(record)
    listed = study_listing(client, record)
    return [{"study": record, "instances": len(listed)}] if listed else []


def owned_records_named(client: GatewayClient, record: str) -> list[str]:
    """``record`` itself, or the records of the study it names that the caller owns."""
    from scanseal.transfer.catalogue import is_study_uid

    if not is_study_uid(record):
        return [record]
    return [entry.record for entry in study_records(client, record, owned=True)]


def study_listing(client: GatewayClient, record: str) -> set[str]:
    """The instance records the study record ``record`` lists; none when it is not one."""
    try:
        return set(client.study(record).instances)
    except (NotFound, InvalidInput):
        return set()


def study_uid_of(client: GatewayClient, listed: set[str], via: InboxGateway) -> str:
    """The Study Instance UID of the instances ``listed`` (a study record's), from the
    caller's catalogue brought up to date through ``via``; NotFound when none is shared."""
    from scanseal.config import scanseal_home
    from scanseal.transfer.catalogue import Catalogue

    if client.identity is None:
        raise InvalidInput("a study needs an identity (--as NAME)")
    with Catalogue.of(scanseal_home(), client.identity.address) as catalogue:
        warn_undescribed(catalogue.refresh(via))
        uids = {e.study for e in catalogue.records() if e.record in listed and e.study}
    if not uids:
        raise NotFound(f"no instance of that study record is shared with you at {client.url}")
    return min(uids)


def act_on_study_or_records(
    client: GatewayClient,
    record: str,
    done: str,
    on_study: Callable[[str], int],
    on_record: Callable[[str], str],
) -> None:
    """Act on the study records of the study ``record`` names, or on ``record`` itself when
    it is a study record (``on_study``: the ledger writes it made), or, for a record or a
    study without a study record at this gateway, on each record the caller owns
    (``on_record``: the rest of its line)."""
    found = study_records_named(client, record)
    for entry in found:
        writes = on_study(str(entry["study"]))
        _out.print(f"{done} on study {record}: study record {entry['study']}, "
                   f"{entry['instances']} instance(s); {writes} ledger transaction(s)")  # fmt: skip
    if found:
        return
    for cid in owned_records_named(client, record):
        _out.print(f"{done} on {cid}{on_record(cid)}")


def patient_records(client: GatewayClient, patient: str) -> list[str]:
    """The records of ``patient`` (Patient ID) in your catalogue, brought up to date first."""
    from scanseal.config import scanseal_home
    from scanseal.transfer.catalogue import Catalogue

    if client.identity is None:
        raise InvalidInput("--patient needs an identity (--as NAME)")
    with Catalogue.of(scanseal_home(), client.identity.address) as catalogue:
        warn_undescribed(catalogue.refresh(client))
        found = [e.record for e in catalogue.records() if e.patient_id == patient]
    if not found:
        raise NotFound(f"no records of patient {patient} shared with you at {client.url}")
    return found


def warn_undescribed(problems: Sequence[tuple[str, ScanSealError]]) -> None:
    """One warning line per inbox record that could not be read (tried again next time)."""
    for record, problem in problems:
        _err.print(f"warning: record {record} not listed: {problem.reason}", markup=False)


def load_forward(config: Path | None) -> ForwardConfig | None:
    """The [forward] table of the configuration (``--config``, $SCANSEAL_CONFIG or the home
    file), if any."""
    from scanseal.dicom.agent import ForwardConfig

    return ForwardConfig.load(config)


def agent_for(settings: ForwardConfig | None) -> ForwardAgent | None:
    """An agent with its identity unlocked when the config has a [forward] table."""
    from scanseal.dicom.agent import ForwardAgent

    return None if settings is None else ForwardAgent(settings, unlock(settings.identity))


# --- de-identification before a send ---------------------------------------------------------


@contextmanager
def deidentified(
    files: list[Path],
    key: Path | None,
    keep: list[str] | None,
    workdir: Path,
    allow_burned_in: bool = False,
) -> Iterator[list[Path]]:
    """``files`` themselves without a key; else de-identified copies that live as long as the
    block, their tokens kept in ``workdir/tokens`` (``scanseal send --deid``). An instance
    whose pixels may show burned-in text is refused unless ``allow_burned_in``."""
    if key is None:
        yield files
        return
    from scanseal.dicom import choose_options
    from scanseal.dicom.deid_files import deidentify_files, load_key

    chosen, secret = choose_options(keep or []), load_key(key)
    with tempfile.TemporaryDirectory(prefix="scanseal-deid-") as scratch:
        written = deidentify_files(
            files, secret, chosen, Path(scratch), workdir / "tokens", allow_burned_in
        )
        for item in written:
            _out.print(f"{item.source} de-identified as {item.output.stem}  token {item.token}")
            warn_burned_in(item)
        yield [item.output for item in written]


def warn_burned_in(item: Written) -> None:
    """One line on stderr for an instance de-identified with its pixels as they were."""
    if item.burned_in is not None:
        _err.print(
            f"warning: {item.source}: {item.burned_in}; its pixels are unchanged "
            "(--allow-burned-in)",
            markup=False,
        )


def parse_cid(text: str) -> bytes:
    """The binary CID from any multibase text form, or ``0x``-hex as the chain shows it."""
    text = text.strip()
    if text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise InvalidInput(f"{text!r} is not a valid hex CID") from None
    return CID.parse(text).to_bytes()
