"""Acceptor processes: C-STOREs answered in more than one process, so both cores work.

With ``[dicom] acceptors = N`` (``durable`` only) the gateway keeps the listening socket and
hands each accepted association (its socket, by SCM_RIGHTS) to the acceptor process that holds
the fewest; each acceptor runs pynetdicom, checks what it receives as the gateway would
(:func:`scanseal.dicom.scp.checked`) and writes it to the spool with its own
:class:`~scanseal.dicom.spool.SpoolWriter`, sealed to the gateway's public card: it holds no
private key and writes nothing else. The gateway stays the spool's only bookkeeper: before an
acceptor writes, it asks the gateway for room (``reserve``; the bound and A700 stay exact
across processes), and once the entry is durable it reports it (``put``) before it answers
Success; the gateway's workers then screen, seal and register it.

An acceptor that dies loses nothing acknowledged: the gateway gives back its reservations,
adopts the entries it wrote durably but did not report (:meth:`Spool.adopt`), removes its
temporaries (never acknowledged) and starts another. An acceptor whose gateway dies is killed
by the kernel (``PR_SET_PDEATHSIG``) and also exits when its pipe closes.

Measured (bench/scp_speed.py, docs/DICOM.md): one process answered 68 instances/s at one
association and 60 at four, the association threads, pynetdicom's polling reactors and the
workers sharing one GIL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final

from scanseal.dicom.spool import Entry, Spool

_log = logging.getLogger("scanseal.dicom.scp")
_START_SECONDS: Final = 60.0
_STOP_SECONDS: Final = 30.0


@dataclass(frozen=True)
class Setup:
    """What an acceptor needs (sent over its pipe when it starts): the [dicom] table, the
    gateway's public card (JSON), the spool directory and the acceptor's slot (1 to 9)."""

    config: Any
    card_json: str
    directory: str
    slot: int
    log_formatter: logging.Formatter | None = None
    log_level: int = logging.INFO


@dataclass
class _Child:
    """One acceptor process as the gateway sees it."""

    slot: int
    process: subprocess.Popen[bytes]
    messages: Connection
    sockets: socket.socket
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    ready: bool = False
    gone: bool = False
    reserved: dict[int, int] = field(default_factory=dict)

    def send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock, contextlib.suppress(OSError):
            self.messages.send(message)


class Acceptors:
    """The gateway's side: the listening socket, the accept loop, one supervising thread per
    acceptor (start, read its messages, adopt what it left, start again)."""

    def __init__(
        self,
        listener: socket.socket,
        setup: Callable[[int], Setup],
        spool: Spool,
        submit: Callable[[Entry], None],
        observe: Callable[[int, float], None],
        count: int,
    ) -> None:
        self.listener = listener
        self._setup, self._spool, self._submit, self._observe = setup, spool, submit, observe
        self._count = count
        self._children: dict[int, _Child] = {}
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.wait_seconds = 10.0

    def start(self) -> Acceptors:
        for slot in range(1, self._count + 1):
            thread = threading.Thread(
                target=self._supervise, args=(slot,), name=f"dicom-acceptor-{slot}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        with self._lock:  # listening is said once each acceptor has set up pynetdicom
            deadline = time.monotonic() + _START_SECONDS
            while len(self._ready()) < self._count and time.monotonic() < deadline:
                self._lock.wait(0.1)
        accepting = threading.Thread(target=self._accept_all, name="dicom-scp", daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    @property
    def pids(self) -> list[int]:
        """The acceptor processes running now (tests kill one)."""
        with self._lock:
            return [child.process.pid for child in self._children.values()]

    def stop(self) -> None:
        """Stop accepting, let each acceptor finish its associations, and adopt what it left."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            children = list(self._children.values())
        for child in children:
            child.send(("stop",))
        for thread in self._threads:
            thread.join(_STOP_SECONDS + 5)

    def _accept_all(self) -> None:
        while not self._stopping.is_set():
            try:
                client, address = self.listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.05)  # a transient accept failure (EMFILE, ECONNABORTED)
                continue
            with client:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._hand_over(client, address)

    def _ready(self) -> list[_Child]:
        return [child for child in self._children.values() if child.ready]

    def _hand_over(self, client: socket.socket, address: Any) -> None:
        """Give an accepted association to the ready acceptor holding the fewest (while every
        one is being started again, wait for one: at most the start time, then it is closed
        and the sender tries again)."""
        with self._lock:
            deadline = time.monotonic() + _START_SECONDS
            while not self._ready() and not self._stopping.is_set():
                if time.monotonic() >= deadline:
                    return
                self._lock.wait(0.1)
            children = sorted(self._ready(), key=lambda c: c.active)
            if not children:
                return
            child = children[0]
            child.active += 1
        try:
            text = f"{address[0]}:{address[1]}".encode()
            socket.send_fds(child.sockets, [text], [client.fileno()])
        except OSError:
            with self._lock:
                child.active -= 1

    def _supervise(self, slot: int) -> None:
        while not self._stopping.is_set():
            try:
                child = self._spawn(slot)
            except OSError as error:
                _log.error("DICOM acceptor %d did not start: %s", slot, error)
                if self._stopping.wait(1.0):
                    return
                continue
            with self._lock:
                self._children[slot] = child
                self._lock.notify_all()
            self._serve(child)
            self._bury(child)
            if not child.ready and self._stopping.wait(1.0):  # it failed to start: not in a loop
                return

    def _spawn(self, slot: int) -> _Child:
        messages, theirs = socket.socketpair()
        sockets, their_sockets = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        command = [sys.executable, "-m", "scanseal.dicom._acceptor",
                   str(theirs.fileno()), str(their_sockets.fileno()), str(os.getpid())]  # fmt: skip
        try:
            fds = (theirs.fileno(), their_sockets.fileno())
            process = subprocess.Popen(command, pass_fds=fds, stdin=subprocess.DEVNULL)  # noqa: S603
        finally:
            theirs.close()
            their_sockets.close()
        connection = Connection(messages.detach())
        connection.send(self._setup(slot))
        return _Child(slot, process, connection, sockets)

    def _serve(self, child: _Child) -> None:
        """Answer one acceptor's messages until its pipe closes. A message that makes no sense
        (a bug) ends that acceptor: what it wrote is adopted when it is buried."""
        while True:
            try:
                message = child.messages.recv()
            except (EOFError, OSError, pickle.UnpicklingError):
                return
            try:
                self._handle(child, message)
            except Exception:
                _log.exception("DICOM acceptor %d sent %r: stopped", child.slot, message[:1])
                child.process.kill()
                return

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "reserve":
            self._reserve(child, message[1], message[2])
        elif kind == "put":
            _kind, ticket, name, size = message
            with self._lock:
                reserved = child.reserved.pop(ticket)
            entry = self._spool.admit(name, size, reserved)
            if entry is not None:
                self._submit(entry)
        elif kind == "release":
            with self._lock:
                reserved = child.reserved.pop(message[1])
            self._spool.release(reserved)
        elif kind == "observe":
            self._observe(message[1], message[2])
        elif kind == "closed":
            with self._lock:
                child.active -= 1
        elif kind == "ready":
            with self._lock:
                child.ready = True
                self._lock.notify_all()
        else:
            raise ValueError(f"unknown message {kind!r}")

    def _reserve(self, child: _Child, ticket: int, size: int) -> None:
        """Room for one instance, answered at once when there is some; otherwise waited for
        in a thread of its own (the acceptor's other messages keep flowing)."""
        if self._spool.reserve(size, 0):
            self._granted(child, ticket, size)
            return

        def wait() -> None:
            if self._spool.reserve(size, self.wait_seconds):
                self._granted(child, ticket, size)
            else:
                child.send(("room", ticket, False))

        threading.Thread(target=wait, name="dicom-reserve", daemon=True).start()

    def _granted(self, child: _Child, ticket: int, size: int) -> None:
        with self._lock:
            gone = child.gone  # it died while the room was waited for: nobody will use it
            if not gone:
                child.reserved[ticket] = size
        if gone:
            self._spool.release(size)
            return
        child.send(("room", ticket, True))

    def _bury(self, child: _Child) -> None:
        """An acceptor gone: its process reaped, its reservations given back, the entries it
        wrote but did not report adopted and queued."""
        with contextlib.suppress(OSError):
            child.messages.close()
        child.sockets.close()
        try:
            child.process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        with self._lock:
            self._children.pop(child.slot, None)
            child.gone = True
            reserved, child.reserved = list(child.reserved.values()), {}
        for size in reserved:
            self._spool.release(size)
        adopted = self._spool.adopt(child.slot)
        for entry in adopted:
            self._submit(entry)
        if not self._stopping.is_set():
            code, found = child.process.returncode, len(adopted)
            _log.warning("DICOM acceptor %d exited (%s); %d unreported instance(s) adopted, "
                         "started again", child.slot, code, found)  # fmt: skip
