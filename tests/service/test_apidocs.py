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


def _resolve(schema: dict[str, object], node: dict[str, object]) -> dict[str, object]:
    reference = node.get("$ref")
    if not isinstance(reference, str):
        return node
    assert reference.startswith("#/components/schemas/"), reference
    components = schema["components"]["schemas"]  # type: ignore[index]
    resolved: dict[str, object] = components[reference.rsplit("/", 1)[-1]]
    return resolved


def _typed(schema: dict[str, object], node: dict[str, object], where: str) -> None:
    """A body schema that says what it holds: binary bytes, or an object whose every property
    is typed in turn (no bare ``{"type": "object"}``)."""
    node = _resolve(schema, node)
    if node.get("type") == "string":
        return
    assert node.get("type") == "object", where
    properties = node.get("properties")
    assert isinstance(properties, dict), f"{where}: an untyped object"
    assert properties, f"{where}: an object of no fields"
    assert node.get("additionalProperties") is False, f"{where}: unknown fields are refused"
    for name, prop in properties.items():
        choices = prop.get("anyOf", [prop])
        for choice in choices:
            choice = _resolve(schema, choice)
            assert choice.get("type") or choice.get("enum") or choice.get("const"), (where, name)
            if choice.get("type") == "object":
                _typed(schema, choice, f"{where}.{name}")


def test_every_request_body_is_a_typed_model(gateway: GatewayProcess) -> None:
    schema = httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()
    writes = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch")
    ]
    assert {(path, method) for path, method, _ in writes} >= {
        ("/v1/records", "post"),
        ("/v1/records/{record}/grants", "post"),
        ("/v1/records/{record}/revocations", "post"),
        ("/v1/audit", "post"),
        ("/v1/studies", "post"),
    }
    for path, method, operation in writes:
        body = operation.get("requestBody")
        assert body is not None, (path, method)
        assert body["required"] is True, (path, method)
        for media, content in body["content"].items():
            _typed(schema, content["schema"], f"{method} {path} {media}")
    grant = _resolve(schema, schema["paths"]["/v1/records/{record}/grants"]["post"]["requestBody"]
                     ["content"]["application/json"]["schema"])  # fmt: skip
    assert set(grant["properties"]) == {  # type: ignore[arg-type]
        "scanseal_grant", "record", "owner", "grantee", "grantee_card_sha256", "header",
        "issued_at", "signature",
    }  # fmt: skip
    audit = _resolve(schema, schema["paths"]["/v1/audit"]["post"]["requestBody"]["content"]
                     ["application/json"]["schema"])  # fmt: skip
    outcome = audit["properties"]["outcome"]["anyOf"][0]  # type: ignore[index]
    assert set(outcome["enum"]) == {"success", "denied", "unauthenticated"}
    study = schema["paths"]["/v1/studies"]["post"]
    assert study["security"] == [{name: [] for name in schema["components"]["securitySchemes"]}]
