"""The Storage SCP's sockets: every association it accepts runs with TCP_NODELAY."""

from __future__ import annotations

import copy
import socket
import time
from pathlib import Path
from typing import Any

from pynetdicom import AE

from gateway_harness import free_port
from scanseal.dicom._ae import Contexts, storage_ae
from scanseal.dicom.config import DicomConfig
from scanseal.dicom.scp import Receiver, StorageSCP


def test_accepted_associations_disable_nagle(tmp_path: Path) -> None:
    card = tmp_path / "x.card.json"  # never read: no C-STORE is sent
    config = DicomConfig(enabled=True, port=free_port(), recipients=(card,))
    receiver: Any = Receiver(None, None, config, None)  # type: ignore[arg-type]
    scp = StorageSCP(receiver).start()
    try:
        ae = AE(ae_title="PROBE")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="SCANSEAL")
        assert assoc.is_established
        deadline = time.monotonic() + 5
        while not scp._server.active_associations and time.monotonic() < deadline:
            time.sleep(0.01)
        (accepted,) = scp._server.active_associations
        sock = accepted.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assoc.release()
    finally:
        scp.stop()


def test_each_association_gets_its_own_copy_of_the_contexts() -> None:
    config = DicomConfig(enabled=True, port=0, recipients=(Path("x.card.json"),))
    contexts = Contexts(storage_ae(config).supported_contexts)
    copies = copy.deepcopy(contexts)  # what pynetdicom does for every association
    assert [(c.abstract_syntax, c.transfer_syntax) for c in copies] == [
        (c.abstract_syntax, c.transfer_syntax) for c in contexts
    ]
    copies[0].transfer_syntax.clear()  # the acceptor's negotiation writes into its copies
    copies[0].result = 0
    assert contexts[0].transfer_syntax
    assert contexts[0].result is None
