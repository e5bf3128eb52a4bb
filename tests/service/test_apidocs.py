"""The API docs work on a network without internet: /docs and /redoc of a real `scanseal serve`
reference only the gateway's own URLs, which answer with the packaged Swagger UI and ReDoc;
the OpenAPI schema describes the signed-request headers as security schemes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from gateway_harness import GatewayProcess, make_world
from scanseal.protocol import REQUEST_HEADER, SIGNATURE_HEADER

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "src" / "scanseal" / "service" / "apidocs"
NPM = ROOT / "tools" / "apidocs" / "node_modules"
_REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'|spec-url=["']([^"']+)""")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory):
    process = GatewayProcess(make_world(tmp_path_factory.mktemp("docs"), ["ito"])).start()
    yield process
    process.stop()


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"),
                                              ("/redoc", "redoc.standalone.js")])  # fmt: skip
def test_docs_pages_load_only_local_assets(gateway: GatewayProcess, page: str, script: str) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        html = http.get(page)
        assert html.status_code == 200
        assert "text/html" in html.headers["content-type"]
        references = [next(g for g in m.groups() if g) for m in _REFERENCE.finditer(html.text)]
        assert any(ref.endswith(script) for ref in references)
        assert "http://" not in html.text
        assert "https://" not in html.text
        for reference in references:
            assert reference.startswith("/")
            assert not reference.startswith("//")
            answer = http.get(reference)
            assert answer.status_code == 200, reference
            assert len(answer.content) > 0
        assert http.get("/apidocs/../../etc/passwd").status_code == 404
        assert http.get("/apidocs/package.json").status_code == 404


def test_openapi_describes_the_signed_request_headers_as_security(gateway: GatewayProcess) -> None:
    schema = httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()
    schemes = schema["components"]["securitySchemes"]
    assert {(s["type"], s["in"], s["name"]) for s in schemes.values()} == {
        ("apiKey", "header", REQUEST_HEADER),
        ("apiKey", "header", SIGNATURE_HEADER),
    }
    signed = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if any(p.get("name") == REQUEST_HEADER for p in operation.get("parameters", []))
    ]
    assert len(signed) >= 6  # upload, fetch, header, grant, revoke, audit, inbox
    for path, method, operation in signed:
        assert operation["security"] == [{name: [] for name in schemes}], (path, method)
    assert "security" not in schema["paths"]["/v1/records/{record}/verify"]["get"]


def test_packaged_assets_are_the_pinned_npm_files_with_their_licences() -> None:
    for licence in ("LICENSE.swagger-ui-dist", "NOTICE.swagger-ui-dist", "LICENSE.redoc"):
        assert (ASSETS / licence).stat().st_size > 0
    if not NPM.is_dir():
        pytest.skip("tools/apidocs/node_modules is not installed (make apidocs)")
    pairs = {
        "swagger-ui-bundle.js": NPM / "swagger-ui-dist" / "swagger-ui-bundle.js",
        "swagger-ui.css": NPM / "swagger-ui-dist" / "swagger-ui.css",
        "favicon-32x32.png": NPM / "swagger-ui-dist" / "favicon-32x32.png",
        "redoc.standalone.js": NPM / "redoc" / "bundles" / "redoc.standalone.js",
        "LICENSE.redoc": NPM / "redoc" / "LICENSE",
    }
    for name, source in pairs.items():
        assert (ASSETS / name).read_bytes() == source.read_bytes(), name
