"""A stand-in PACS for the forwarding tests: a pynetdicom Storage SCP run as a child process.

``python pacs_scp.py PORT DIR`` stores each received instance as DIR/<SOPInstanceUID>.dcm (the
bytes as encoded on the wire, with a Part 10 header) and prints ``ready`` once listening.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt


def main() -> None:
    port, target = int(sys.argv[1]), Path(sys.argv[2])

    def on_store(event: Any) -> int:
        uid = event.request.AffectedSOPInstanceUID
        (target / f"{uid}.dcm").write_bytes(bytes(event.encoded_dataset()))
        return 0x0000

    ae = AE(ae_title="PACS")
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(str(context.abstract_syntax), ALL_TRANSFER_SYNTAXES)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
