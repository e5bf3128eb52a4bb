"""The package surface: every exported name resolves, and the decoders load only on demand."""

from __future__ import annotations

import subprocess
import sys

import scanseal.integrity as integrity
from scanseal.integrity.pixels import pixel_digest


def test_every_exported_name_resolves() -> None:
    for name in integrity.__all__:
        assert getattr(integrity, name) is not None
    assert integrity.pixel_digest is pixel_digest


def test_hashing_does_not_load_the_image_decoders() -> None:
    code = "import sys, scanseal.integrity; print('numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
