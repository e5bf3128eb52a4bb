"""Run the console: a loopback socket, the launch URL with its one-time token, uvicorn.

The socket is bound before the app is built so that port 0 (a free port) can be used and the
Host check knows the port. The opened records' plaintext lives in a 0700 temporary directory
that is removed when the console stops.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import sys
import tempfile
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path

import uvicorn

from scanseal.client import GatewayClient
from scanseal.config import scanseal_home
from scanseal.console._anchor import Anchors
from scanseal.console._app import create_app
from scanseal.console._guard import TOKEN_PARAMETER, Secrets
from scanseal.console._views import Console
from scanseal.errors import GatewayUnavailable, InvalidInput
from scanseal.ledger import LedgerConfig

HOST = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: a free one); GatewayUnavailable (exit
    5, as for ``serve``) when the port is in use, InvalidInput when it cannot be had otherwise."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise GatewayUnavailable(f"{HOST}:{port}: the port is in use") from None
        raise InvalidInput(f"cannot listen on {HOST}:{port}: {error.strerror}") from None
    sock.listen(64)
    return sock


def has_display(env: Mapping[str, str], platform: str) -> bool:
    """Whether a graphical browser can be opened. Without a display, Python's ``webbrowser``
    would start a text browser (w3m, lynx) in this terminal, which would spend the one-time
    token itself; so on Linux and the BSDs the link is only printed then."""
    if platform.startswith(("darwin", "win")):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def serve(
    client: GatewayClient,
    names: dict[str, str],
    *,
    port: int = 0,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
    ledger: LedgerConfig | None = None,
) -> None:
    """Serve the console for ``client``'s identity until interrupted (Ctrl-C or SIGTERM);
    ``ledger``: the chain each inclusion proof's root is compared with (None: not compared)."""
    client.health()  # fail here, in one line, if the gateway is not there
    anchors = Anchors(ledger, client.domain.contract)
    sock = bind(port)
    workdir = Path(tempfile.mkdtemp(prefix="scanseal-console-"))
    try:
        keys = Secrets()
        chosen = int(sock.getsockname()[1])
        console = Console(client, workdir, names, scanseal_home(), anchors)
        app = create_app(console, keys, chosen)
        url = f"http://{HOST}:{chosen}/?{TOKEN_PARAMETER}={keys.token}"
        announce(url)
        if open_browser and has_display(os.environ, sys.platform):
            webbrowser.open(url)
        elif open_browser:
            announce("no graphical display: open the link in your browser")
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        _run_until_stopped(uvicorn.Server(config), sock)
    finally:
        sock.close()
        anchors.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _run_until_stopped(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, then return so the caller's clean-up runs.

    uvicorn shuts down gracefully on either signal and then raises it again under the handler it
    found; a default SIGTERM handler would end the process there, before the opened records'
    plaintext is deleted, so SIGTERM is made a normal exit while the console runs.
    """

    def stop(_signal: int, _frame: object) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C, re-raised by uvicorn once it has shut down
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
