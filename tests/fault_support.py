"""Helpers for fault tests against a real ``scanseal serve``: signed uploads and fetches made by
hand (so each answer's status and body can be read), a restartable anvil, a gateway started
with extra environment variables."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from devnode import anvil_binary
from gateway_harness import GatewayProcess, World, free_port
from scanseal.client import open_bundle
from scanseal.protocol import wire
from scanseal.protocol.signed import Domain, signed_headers
from scanseal.storage import cid_of
from scanseal.transfer.upload import seal_for_upload

CT = Path(str(get_testdata_file("CT_small.dcm")))
HANG = 10.0
"""No answer, refusal included, may take longer than this (seconds)."""


class Prober:
    """Signed uploads and fetches made by hand, so each answer's status and body can be read."""

    def __init__(self, gateway: GatewayProcess, scratch: Path) -> None:
        self.gateway = gateway
        self.people = gateway.world.people
        self.scratch = scratch
        self.acked: dict[str, str] = {}
        """Acknowledged uploads: record (manifest CID) -> envelope CID."""
        self._count = 0
        self._http = httpx.Client(base_url=gateway.url, timeout=HANG, trust_env=False)
        info = self._http.get("/v1/health").json()
        self.domain = Domain(int(info["chain_id"]), info["contract"], info["gateway"])

    def close(self) -> None:
        self._http.close()

    def seal(self) -> tuple[str, bytes]:
        """A fresh sealed upload (record CID, request body): ito's, for lee."""
        self._count += 1
        work = self.scratch / f"seal-{self._count}"
        work.mkdir(parents=True)
        sealed = seal_for_upload(CT, [self.people["lee"].card], self.people["ito"], work)
        manifest = sealed.manifest_path.read_bytes()
        body = wire.pack({"manifest": manifest.decode("utf-8")}, sealed.envelope.read_bytes())
        return cid_of(io.BytesIO(manifest)), body

    def upload(self, sealed: tuple[str, bytes]) -> httpx.Response:
        """POST the upload with a fresh signature; remember it when acknowledged."""
        record, body = sealed
        headers = signed_headers(
            self.people["ito"].account, self.domain, "upload", record, body=body
        )
        headers["Content-Type"] = wire.MEDIA_TYPE
        response = self._timed("POST", "/v1/records", headers, body)
        if response.status_code == 200:
            answer = response.json()
            assert answer["manifest_cid"] == record
            self.acked[record] = str(answer["envelope_cid"])
        return response

    def fetch(self, record: str) -> httpx.Response:
        headers = signed_headers(self.people["lee"].account, self.domain, "fetch", record)
        return self._timed("GET", f"/v1/records/{record}", headers)

    def verify(self, record: str) -> httpx.Response:
        return self._timed("GET", f"/v1/records/{record}/verify", {})

    def _timed(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self._http.request(method, path, headers=headers, content=body)
        except httpx.TimeoutException:
            pytest.fail(f"{method} {path}: no answer within {HANG} s (a hang)")
        assert time.monotonic() - started < HANG
        self.alive()
        return response

    def alive(self) -> None:
        process = self.gateway.process
        assert process is not None
        assert process.poll() is None, self.gateway.log.read_text()[-3000:]

    def refused(self, response: httpx.Response, status: int, *errors: str) -> None:
        """The answer is exactly one JSON refusal of one of these kinds, one-line reason."""
        assert response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert sorted(body) == ["error", "reason"], body
        assert body["error"] in errors, body
        assert body["reason"], body
        assert "\n" not in body["reason"], body
        assert "Traceback" not in response.text

    def ok(self, response: httpx.Response) -> None:
        assert response.status_code == 200, (response.status_code, response.text)

    def opens(self, record: str) -> None:
        """A fresh fetch of ``record`` answers 200 and the bundle opens to the original file."""
        response = self.fetch(record)
        self.ok(response)
        self._count += 1
        output = self.scratch / f"opened-{self._count}.dcm"
        open_bundle(response.content, record, self.people["lee"], output)
        assert output.read_bytes() == CT.read_bytes()

    def nothing_lost(self) -> None:
        """Every acknowledged upload still fetches, opens and passes the public checks."""
        assert self.acked
        for record in self.acked:
            self.opens(record)
            self.ok(self.verify(record))


class Anvil:
    """A real anvil on a fixed port whose chain survives a stop (``--state``: dumped on
    SIGTERM, loaded on start), so "down and restarted" is the same chain coming back."""

    def __init__(self, binary: Path, state: Path) -> None:
        self.binary = binary
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Anvil:
        self.process = subprocess.Popen(
            [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--silent",
             "--state", str(self.state)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"anvil did not answer on {self.url}")

    def stop(self) -> None:
        """SIGTERM by PID: anvil writes its state file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Served(GatewayProcess):
    """The harness's gateway with extra environment variables."""

    def __init__(self, world: World, env: dict[str, str] | None = None) -> None:
        super().__init__(world)
        self._extra = env or {}

    def start(self, timeout: float = 60.0) -> Served:
        saved = {key: os.environ.get(key) for key in self._extra}
        os.environ.update(self._extra)
        try:
            super().start(timeout)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return self


def restartable_anvil(factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """An Anvil started for a module-scoped fixture (skips without anvil), stopped after."""
    binary = anvil_binary()
    if binary is None:
        pytest.skip("anvil is not installed: run `make install-contracts`")
    node = Anvil(binary, factory.mktemp("anvil") / "state.json").start()
    yield node
    node.stop()
