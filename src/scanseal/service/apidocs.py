"""The gateway's API documentation without a CDN: Swagger UI at ``/docs`` and ReDoc at
``/redoc``, both from assets shipped in the package (``service/apidocs/``, copied from the
pinned npm packages of tools/apidocs by ``make apidocs``, licences beside them), and the
signed-request headers described as security schemes in the OpenAPI schema."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response

from scanseal.errors import NotFound
from scanseal.protocol import REQUEST_HEADER, SIGNATURE_HEADER
from scanseal.service.bodies import SCHEMAS as REQUEST_SCHEMAS

PREFIX: Final = "/apidocs"
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "redoc.standalone.js": "text/javascript",
}
"""The files the two pages load, by name, with their media types (nothing else is served)."""
SIGNED_SECURITY: Final[list[dict[str, list[str]]]] = [{"signedRequest": [], "requestSignature": []}]
"""The security requirement of a signed route: both headers together."""
SIGNED_ROUTE: Final = {
    "parameters": [
        {"name": REQUEST_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
         "description": "base64url of the canonical JSON request (docs/PROTOCOL.md §2)"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "EIP-712 signature, 0x + 130 hex"},
    ],
    "security": SIGNED_SECURITY,
}  # fmt: skip
"""The OpenAPI extras of a signed route: its two headers and their security requirement."""
SECURITY_SCHEMES: Final = {
    "signedRequest": {
        "type": "apiKey",
        "in": "header",
        "name": REQUEST_HEADER,
        "description": "base64url of the canonical JSON request: action, record, gateway, "
        "requester, nonce, issued_at, expires_at, body_sha256 (docs/PROTOCOL.md §2)",
    },
    "requestSignature": {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "the requester's EIP-712 signature of that request under the gateway's "
        "domain (chain id, contract, gateway address), 0x + 130 hex",
    },
}


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to ``app`` (created with ``docs_url=None``
    and ``redoc_url=None``) and the security schemes to its OpenAPI schema."""
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon-32x32.png",
            with_google_fonts=False,
        )

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media = ASSETS.get(name)
        if media is None:
            raise NotFound(f"no documentation asset {name!r}")
        headers = {"cache-control": "public, max-age=86400"}
        return Response(asset_bytes(name), media_type=media, headers=headers)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            components = schema.setdefault("components", {})
            components["securitySchemes"] = SECURITY_SCHEMES
            components.setdefault("schemas", {}).update(REQUEST_SCHEMAS)  # the JSON bodies
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@functools.cache
def asset_bytes(name: str) -> bytes:
    """A packaged asset's bytes (read once; a few MiB in all)."""
    try:
        return resources.files("scanseal.service").joinpath("apidocs", name).read_bytes()
    except OSError:
        raise NotFound(f"documentation asset {name} is not installed (make apidocs)") from None
