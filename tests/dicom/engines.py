"""Orthanc as a child process for the engine tests (inside their private network namespace)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from gateway_harness import free_port


class Orthanc:
    """One Orthanc with its own storage, HTTP and DICOM ports; stopped by its PID."""

    def __init__(
        self,
        root: Path,
        aet: str,
        modalities: dict[str, list[Any]],
        dicomweb_servers: dict[str, list[str]] | None = None,
    ) -> None:
        self.aet = aet
        self.http_port = free_port()
        self.dicom_port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": aet,
            "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False,
            "DicomModalities": modalities,
            "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": dicomweb_servers or {}},
            "StorageCompression": False,
        }
        self.config = root / "orthanc.json"
        self.config.write_text(json.dumps(config), "utf-8")
        self.log = root / "orthanc.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> Orthanc:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["Orthanc", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def upload(self, path: Path) -> str:
        answer = httpx.post(f"{self.url}/instances", content=path.read_bytes(), timeout=30)
        answer.raise_for_status()
        return str(answer.json()["ID"])

    def find(self, sop_instance_uid: str) -> str:
        answer = httpx.post(
            f"{self.url}/tools/lookup", content=sop_instance_uid.encode(), timeout=10
        ).json()
        (hit,) = [h for h in answer if h["Type"] == "Instance"]
        return str(hit["ID"])

    def file(self, instance: str) -> bytes:
        return httpx.get(f"{self.url}/instances/{instance}/file", timeout=30).content

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=120)
