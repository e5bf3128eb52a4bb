"""The web console (``scanseal console``): pages for people who would rather look than read.

A small server on 127.0.0.1 renders HTML pages (docs/CONSOLE.md): the records shared with the
user, a record's manifest, hashes, screen verdict with the heat map on the image and its ledger
trail with every batched inclusion proof recomputed, the audit search with its exports (JSON,
CSV, FHIR, DICOM), "verify a file" by H1 and pixel digest, and the gateway's health. The
gateway requests are signed here with the user's keystore through
:class:`scanseal.client.GatewayClient`; the private key never reaches the browser. The browser
gets in once, with the one-time token of the URL printed at start (``_guard``). Every asset —
the pinned htmx and the style sheet — ships in this package; nothing loads from a CDN.

An adapter like ``service``: it imports client, audit, detect, integrity and transfer; only the
CLI imports it.
"""

from __future__ import annotations

from scanseal.console._app import create_app
from scanseal.console._guard import Secrets
from scanseal.console._serve import bind, serve
from scanseal.console._views import Console

__all__ = ["Console", "Secrets", "bind", "create_app", "serve"]
