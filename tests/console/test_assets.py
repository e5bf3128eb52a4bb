"""Every asset of the console ships in the package, pinned: htmx is the npm release the lockfile
names, byte for byte, with its licence; no page loads anything from another origin."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "scanseal" / "console" / "static"
TEMPLATES = ROOT / "src" / "scanseal" / "console" / "templates"
TOOLS = ROOT / "tools" / "console"
VENDOR = json.loads((STATIC / "VENDOR.json").read_text("utf-8"))


def _sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_the_pin_is_the_lockfile_release() -> None:
    pinned = json.loads((TOOLS / "package.json").read_text("utf-8"))["dependencies"]["htmx.org"]
    lock = json.loads((TOOLS / "package-lock.json").read_text("utf-8"))
    locked = lock["packages"]["node_modules/htmx.org"]
    assert VENDOR["version"] == pinned == locked["version"]
    assert VENDOR["tarball_integrity"] == locked["integrity"]
    assert locked["integrity"].startswith("sha512-")


def test_the_packaged_copy_is_the_recorded_one() -> None:
    script = (STATIC / "htmx.min.js").read_bytes()
    assert _sha384(script) == VENDOR["files"]["htmx.min.js"]["sha384"]
    assert f'version:"{VENDOR["version"]}"'.encode() in script
    assert b"Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_bytes()


@pytest.mark.skipif(
    not (TOOLS / "node_modules" / "htmx.org").is_dir(),
    reason="tools/console not installed (make console-tools runs npm ci)",
)
def test_the_packaged_copy_is_the_npm_release() -> None:
    """npm ci checked the tarball against the lockfile's integrity; the files we ship are its."""
    installed = TOOLS / "node_modules" / "htmx.org"
    assert (
        json.loads((installed / "package.json").read_text("utf-8"))["version"]
        == (VENDOR["version"])
    )
    for name, entry in VENDOR["files"].items():
        assert (STATIC / name).read_bytes() == (installed / entry["from"]).read_bytes(), name


def test_no_page_refers_to_another_origin() -> None:
    references = []
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text("utf-8")
        references += re.findall(r'(?:src|href|action|hx-get|hx-post)="([^"]*)"', text)
    assert references
    outside = [r for r in references if not r.startswith(("/", "#")) or r.startswith("//")]
    assert outside == []


def test_the_package_data_ships_the_assets() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    assert '"console/static/*"' in pyproject
    assert '"console/templates/*.html"' in pyproject
