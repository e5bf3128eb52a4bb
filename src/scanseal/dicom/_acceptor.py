"""One acceptor process (:mod:`scanseal.dicom._acceptors`): pynetdicom over the associations
the gateway hands it; each C-STORE checked, spooled with room the gateway reserved, reported,
then answered."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.transport import ThreadedAssociationServer

from scanseal._disk import disk_error
from scanseal.crypto.identity import IdentityCard
from scanseal.dicom._acceptors import Setup
from scanseal.dicom._ae import Contexts, storage_ae
from scanseal.dicom._logs import take_over
from scanseal.dicom.scp import (
    FAILED,
    OUT_OF_RESOURCES,
    SUCCESS,
    checked,
    header_or_none,
    instance_fields,
    log_refused,
    make_status,
    status_for,
)
from scanseal.dicom.spool import SpoolWriter
from scanseal.errors import ScanSealError

_PR_SET_PDEATHSIG: Final = 1
_ANSWER_MARGIN: Final = 30.0
"""Seconds beyond ``spool_wait_seconds`` an acceptor waits for the gateway's answer on room."""
_log = logging.getLogger("scanseal.dicom.scp")


class _HandedServer(ThreadedAssociationServer):
    """pynetdicom's threaded server that binds nothing: its associations arrive as sockets the
    gateway accepted (:meth:`Acceptor.run` hands each to ``process_request``)."""

    def server_bind(self) -> None:
        if self.socket is not None:
            self.socket.close()

    def server_activate(self) -> None:
        pass


class Acceptor:
    """The acceptor's state: the [dicom] table, the spool writer and the pipe to the gateway."""

    def __init__(self, setup: Setup, messages: Connection, sockets: socket.socket) -> None:
        self.config = setup.config
        self._log_setup = (setup.log_formatter, setup.log_level)
        self.writer = SpoolWriter(
            Path(setup.directory), IdentityCard.from_json(setup.card_json), setup.slot
        )
        self._messages, self._sockets = messages, sockets
        self._send_lock = threading.Lock()
        self._tickets = itertools.count(1)
        self._answers: dict[int, tuple[threading.Event, list[bool]]] = {}
        self._answers_lock = threading.Lock()
        self._stopping = threading.Event()
        ae = storage_ae(self.config)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_CONN_CLOSE, lambda _event: self._send(("closed",))),
        ]
        address = (self.config.host, self.config.port)
        self._server = ae.make_server(address, evt_handlers=handlers, server_class=_HandedServer)
        self._server.contexts = Contexts(self._server.contexts)

    def run(self) -> None:
        """Serve handed associations until the gateway says stop or its pipe closes."""
        take_over(self._log_setup[0], self._log_setup[1])
        threading.Thread(target=self._listen, name="gateway-pipe", daemon=True).start()
        self._send(("ready",))
        while not self._stopping.is_set():
            try:
                _text, fds, _flags, _address = socket.recv_fds(self._sockets, 256, 1)
            except OSError:
                break
            if not fds:
                break  # the gateway closed its end
            client = socket.socket(fileno=fds[0])
            host, _, port = _text.decode().rpartition(":")
            self._server.process_request(client, (host, int(port or 0)))
        self._finish()

    def _finish(self) -> None:
        """Let the associations in progress end (at most the stop time), then exit."""
        deadline = time.monotonic() + 25.0
        while self._server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self._messages.close()
        os._exit(0)

    def _listen(self) -> None:
        """The gateway's messages: answers on room, ``stop``; a closed pipe ends the process."""
        while True:
            try:
                message = self._messages.recv()
            except (EOFError, OSError):
                os._exit(0)  # the gateway is gone: nothing more may be acknowledged
            if message[0] == "room":
                with self._answers_lock:
                    waiting = self._answers.get(message[1])
                if waiting is not None:
                    waiting[1].append(bool(message[2]))
                    waiting[0].set()
            elif message[0] == "stop":
                self._stopping.set()
                with contextlib.suppress(OSError):
                    self._sockets.shutdown(socket.SHUT_RDWR)

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._messages.send(message)

    def _on_store(self, event: Any) -> Dataset:
        started = time.perf_counter()
        calling = str(event.assoc.requestor.ae_title).strip()
        raw: bytes | None = None
        try:
            raw = bytes(event.encoded_dataset())
            status = self._store(raw, calling, str(event.request.AffectedSOPClassUID))
        except ScanSealError as error:
            log_refused(calling, header_or_none(raw), status_for(error), error.reason)
            status = make_status(status_for(error), error.reason)
        except BaseException as error:  # a bug still answers, never Success
            fields = instance_fields(calling, header_or_none(raw), FAILED)
            _log.exception("C-STORE from %s failed", calling, extra={"fields": fields})
            status = make_status(FAILED, f"internal error: {type(error).__name__}")
        with contextlib.suppress(OSError):
            self._send(("observe", int(status.Status), time.perf_counter() - started))
        return status

    def _store(self, raw: bytes, calling: str, expected: str) -> Dataset:
        """Checked, room reserved by the gateway, written durably, reported, Success."""
        received = checked(raw, calling, expected, self.config)
        if isinstance(received, Dataset):
            return received  # the SOP Class differs from the request's (logged)
        ticket = self._reserve(len(raw))
        if ticket is None:
            reason = "the spool is full; send again later"
            log_refused(calling, received.header, OUT_OF_RESOURCES, reason)
            return make_status(OUT_OF_RESOURCES, reason)
        try:
            name, size = self.writer.write(raw, calling)
        except BaseException as error:
            self._send(("release", ticket))
            if isinstance(error, OSError):  # the spool's disk: full, read-only, gone
                raise disk_error(error, store=True) from None
            raise
        self._send(("put", ticket, name, size))  # before Success: the gateway queues it
        return make_status(SUCCESS, None)

    def _reserve(self, size: int) -> int | None:
        """A ticket for room the gateway reserved, or None when the spool stayed full."""
        ticket = next(self._tickets)
        waiting: tuple[threading.Event, list[bool]] = (threading.Event(), [])
        with self._answers_lock:
            self._answers[ticket] = waiting
        try:
            self._send(("reserve", ticket, size))
            answered = waiting[0].wait(self.config.spool_wait_seconds + _ANSWER_MARGIN)
        finally:
            with self._answers_lock:
                self._answers.pop(ticket, None)
        return ticket if answered and waiting[1] == [True] else None


def main(argv: list[str]) -> None:
    """An acceptor process: ``python -m scanseal.dicom._acceptor MESSAGES_FD SOCKETS_FD PID``
    (PID the gateway's)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for ending in (signal.SIGINT, signal.SIGTERM):  # sent to the whole group: the gateway
        signal.signal(ending, signal.SIG_IGN)  # stops its acceptors itself, in order
    if os.getppid() != int(argv[2]):
        return  # the gateway died before the line above ran
    messages = Connection(int(argv[0]))
    sockets = socket.socket(fileno=int(argv[1]))
    setup: Setup = messages.recv()
    Acceptor(setup, messages, sockets).run()


if __name__ == "__main__":
    main(sys.argv[1:])
