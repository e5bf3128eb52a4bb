"""``scanseal serve``, ``certs``, ``send``, ``fetch``, ``grant`` and ``revoke``: the gateway.

The gateway URL comes from ``--gateway`` or ``$SCANSEAL_GATEWAY_URL``; a private CA certificate
for TLS from ``--ca`` or ``$SCANSEAL_GATEWAY_CA``. ``scanseal audit`` and ``scanseal verify``
take the same ``--gateway`` option (see their modules).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape  # help text is Rich markup: "[gateway]" would vanish

from scanseal._cli._common import (
    AsName,
    BurnedInOption,
    CaOption,
    ConfigOption,
    GatewayOption,
    KeepOption,
    agent_for,
    connect,
    deidentified,
    read_passphrase,
    refuse,
    study_bars,
    warn_if_flagged,
)
from scanseal._lock import home_lock
from scanseal.crypto.identity import IdentityCard
from scanseal.errors import InvalidInput

if TYPE_CHECKING:  # the client pulls in httpx: import it only when talking to a gateway
    from scanseal.client import GatewayClient

_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format", help=escape("text or json (one object per line); [gateway] log_format.")
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option("--log-level", help=escape("debug, info, warning or error; [gateway] log_level.")),
]


def serve(
    config: ConfigOption = None, log_format: LogFormat = None, log_level: LogLevel = None
) -> None:
    """Run the department gateway (embedded chain and store unless configured otherwise)."""
    from scanseal.service.server import ServerConfig, open_gateway, preflight
    from scanseal.service.server import serve as run

    settings = ServerConfig.load(config)  # the one read of scanseal.toml
    gateway = settings.gateway
    gateway = replace(gateway, log_format=log_format or gateway.log_format,
                      log_level=log_level or gateway.log_level)  # fmt: skip
    settings = replace(settings, gateway=gateway)
    with ExitStack() as held:  # one serve per home (and one agent, with [forward]), first
        held.enter_context(home_lock("serve"))
        if settings.forward is not None:
            held.enter_context(home_lock("agent"))
        refuse(preflight(settings).problems)  # before the passphrase, chain and state
        forwarder = agent_for(settings.forward)  # [forward]: records into this department's PACS
        run(open_gateway(settings, read_passphrase(settings.gateway.identity)), settings, forwarder)


def certs(
    directory: Annotated[Path, typer.Argument(help="Where ca.pem, ca.key, server.pem, .key go.")],
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="DNS name or IP of the gateway (repeatable)."),
    ] = None,
    new_ca: Annotated[
        bool, typer.Option("--new-ca", help="Replace the CA too (every client needs the new one).")
    ] = False,
) -> None:
    """Create a private CA and a gateway certificate for TLS.

    Run again: a new certificate under the same CA (clients keep ca.pem), unless --new-ca."""
    from scanseal.service.tls import make_certs

    files = make_certs(directory, name or None, new_ca=new_ca)
    _out.print(_CA_OUTCOME[files.outcome].format(ca=files.ca, key=files.ca_key), markup=False)
    _out.print(
        f"certificate {files.cert}  key {files.key}  (tls_cert / tls_key in [gateway])",
        markup=False,
    )


_CA_OUTCOME = {
    "created": "new CA {ca}  (give it to clients: --ca; keep its key {key} to renew)",
    "renewed": "CA {ca} kept (clients need nothing new); the certificate below is renewed "
    "under it: restart the gateway to serve it",
    "replaced": "replaced the CA {ca} and its key {key}: every client needs the new ca.pem",
}


def send(
    files: Annotated[list[Path], typer.Argument(help="Images of the study to send.")],
    to: Annotated[list[Path], typer.Option("--to", help="Recipient identity card (repeatable).")],
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where the sealed envelopes are kept.")
    ] = Path("."),
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
    """Seal each image here and upload it; prints one record (manifest CID) per image.

    Then, on stderr, each recipient's card fingerprint, to compare with what they read out."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InvalidInput(f"no such file: {', '.join(missing)}")
    cards = [IdentityCard.load(path) for path in to]
    with deidentified(files, deid_key, keep, workdir, allow_burned_in) as sending:
        _send(sending, cards, workdir, connect(gateway, ca, as_name))


def _send(
    files: list[Path], cards: list[IdentityCard], workdir: Path, client: GatewayClient
) -> None:
    total = sum(f.stat().st_size for f in files)
    with client, study_bars() as p:
        task = p.add_task(f"sending {len(files)} image(s)", total=total)
        for file in files:
            sealed = client.seal(file, cards, workdir, progress=lambda n: p.advance(task, n))
            answer = client.upload(sealed)
            warn_if_flagged(sealed.manifest, file.name)
            _out.print(f"{file.name}  record {answer['manifest_cid']}")
    for card in cards:
        _err.print(f"sealed for {card.name}  fingerprint {card.fingerprint}", markup=False)


def fetch(
    records: Annotated[list[str], typer.Argument(help="Record(s): manifest CIDs.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Directory (several records) or file.")
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
    """Fetch records by signed request, check every hash, decrypt; nothing written on failure."""
    destination = None
    if to_pacs is not None:
        from scanseal.dicom.forward import Destination

        destination = Destination.parse(to_pacs)
    opened_paths: list[Path] = []
    with connect(gateway, ca, as_name) as client, study_bars() as p:
        task = p.add_task(f"fetching {len(records)} record(s)", total=len(records))
        for record in records:
            target = output / record if len(records) > 1 or output.is_dir() else output
            opened = client.fetch(record, target)
            warn_if_flagged(opened.manifest, record)
            opened_paths.append(opened.path)
            p.advance(task, 1)
            _out.print(f"{record} -> {opened.path}  (verified against manifest and ledger)")
    if destination is not None:
        from scanseal.dicom.forward import forward

        sent = forward(opened_paths, destination, calling_ae)
        _out.print(f"forwarded {sent} instance(s) to {destination}")


def grant(
    record: Annotated[str, typer.Argument(help="Record (manifest CID) you own.")],
    to: Annotated[Path, typer.Option("--to", help="Identity card of the new recipient.")],
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
) -> None:
    """Re-wrap a record's key for one more recipient and grant access on the ledger."""
    card = IdentityCard.load(to)
    with connect(gateway, ca, as_name) as client:
        answer = client.grant(record, card)
    _out.print(f"granted {card.name} ({card.address}) on {record}; grant {answer['grant_cid']}")


def revoke(
    record: Annotated[str, typer.Argument(help="Record (manifest CID) you own.")],
    grantee: Annotated[str, typer.Option("--from", help="Address or card file to revoke.")],
    as_name: AsName = None,
    gateway: GatewayOption = None,
    ca: CaOption = None,
) -> None:
    """Stop future releases of a record to a grantee (what it downloaded stays with it)."""
    address = IdentityCard.load(Path(grantee)).address if Path(grantee).is_file() else grantee
    with connect(gateway, ca, as_name) as client:
        client.revoke(record, address)
    _out.print(f"revoked {address} on {record}")


def register(app: typer.Typer) -> None:
    for name, command in (
        ("serve", serve),
        ("certs", certs),
        ("send", send),
        ("fetch", fetch),
        ("grant", grant),
        ("revoke", revoke),
    ):
        app.command(name)(command)
