"""The web console (``scanseal console``): pages for people who would rather look than read.

A small server on 127.0.0.1 renders HTML pages (docs/CONSOLE.md): the studies shared with the
user from their catalogue, each opening to its records; a record's manifest, hashes, screen
verdict with the heat map on the image and its ledger trail, each batched inclusion proof
compared with the root anchored on the user's own chain (``_anchor``); the gateway's signed
audit query across records with its exports (JSON, CSV, FHIR, DICOM; ``_query``); "verify a
file" by H1 and pixel digest; and the gateway's health. The gateway requests are signed here
with the user's keystore through :class:`scanseal.client.GatewayClient`; the private key never
reaches the browser. The browser gets in once, with the one-time token of the URL printed at
start (``_guard``). Every asset — the pinned htmx and the style sheet — ships in this package;
nothing loads from a CDN.

An adapter like ``service``: it imports client, audit, detect, integrity, ledger and transfer;
only the CLI imports it.
"""

from __future__ import annotations

from scanseal.console._app import create_app
from scanseal.console._guard import Secrets
from scanseal.console._serve import bind, serve
from scanseal.console._views import Console

__all__ = ["Console", "Secrets", "bind", "create_app", "serve"]
