"""The gateway client: seal and send, fetch and open, grant, revoke, audit and verify over HTTPS.

Apart from the server (``scanseal.service``): both speak ``scanseal.protocol``. Nothing a gateway
answers is trusted; ``open_bundle`` checks a fetched bundle before anything is decrypted, and
``record_manifest`` a manifest a gateway sends against the record's CID. A
:class:`StudyFetcher` fetches, describes and opens a study's records several at once.
"""

from __future__ import annotations

from scanseal.client.gateway_client import (
    Bundle,
    GatewayClient,
    error_from_response,
    open_bundle,
    parse_bundle,
    record_manifest,
)
from scanseal.client.study_fetch import FETCHES_AHEAD, StudyFetcher

__all__ = [
    "FETCHES_AHEAD",
    "Bundle",
    "GatewayClient",
    "StudyFetcher",
    "error_from_response",
    "open_bundle",
    "parse_bundle",
    "record_manifest",
]
