"""Runs netns_engines.py (Orthanc, dcmtk) inside a private network namespace of its own.

Orthanc and dcmtk cannot be told to listen on 127.0.0.1 only, so the suite runs under
``unshare -n`` with only the loopback interface up: nothing it starts is reachable from outside.
Needs root (for the namespace) and the Debian packages that `make dicom-tools` installs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MISSING = [tool for tool in ("Orthanc", "dcmsend", "unshare", "ip") if shutil.which(tool) is None]


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
@pytest.mark.skipif(bool(MISSING), reason=f"not installed: {MISSING} (make dicom-tools)")
def test_orthanc_and_dcmtk_in_a_private_network_namespace() -> None:
    env = dict(os.environ, SCANSEAL_IN_NETNS="1")
    inner = f"ip link set lo up && exec {sys.executable} -m pytest -q -p no:cacheprovider "
    inner += str(HERE / "netns_engines.py")
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", inner],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
