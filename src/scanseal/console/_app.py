"""The console's routes: server-rendered pages over the user's signed gateway requests.

Every page is HTML rendered here with Jinja2 (autoescaped); the script library (htmx) and the
style sheet are files of this package, served from ``/static``. Routes are plain functions run
in the server's thread pool, since each one waits on the gateway. A ScanSeal error becomes the
error page with its one-line reason and a 4xx status (502 when the gateway failed), never a
traceback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from scanseal import audit, errors
from scanseal.console._chart import timeline_svg
from scanseal.console._guard import CSRF_FIELD, Guard, Secrets, require_csrf
from scanseal.console._inbox import inbox_of
from scanseal.console._match import check_file
from scanseal.console._query import (
    EXPORT_PAGE,
    EXPORTS,
    PAGE_SIZE,
    Search,
    collect,
    export_text,
    records_of,
)
from scanseal.console._views import Console, verdict_text
from scanseal.errors import InvalidInput, ScanSealError
from scanseal.ledger import utc_iso
from scanseal.storage import CID

HERE: Final = Path(__file__).resolve().parent
STATUS: Final[dict[type[ScanSealError], int]] = {
    errors.InvalidInput: 400,
    errors.AccessDenied: 403,
    errors.NotFound: 404,
    errors.ReplayDetected: 409,
}
"""HTTP status of each error kind; anything else came from the gateway or the network: 502."""
MAX_UPLOAD: Final = 512 * 1024 * 1024

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


def create_app(console: Console, keys: Secrets, port: int) -> FastAPI:
    """The console's ASGI app for ``console``, guarded by ``keys`` at 127.0.0.1:``port``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console, app.state.secrets = console, keys
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(ScanSealError, _scanseal_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _record_pages(app)
    _audit_pages(app)
    _tool_pages(app)
    app.add_middleware(Guard, keys=keys, port=port)
    return app


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    console: Console = request.app.state.console
    page = _templates.get_template(name).render(
        me=console.me,
        gateway=console.client.url,
        csrf=request.app.state.secrets.csrf,
        csrf_field=CSRF_FIELD,
        page=name.removesuffix(".html"),
        **context,
    )
    return HTMLResponse(page, status_code=code)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(_console)]


def _record_pages(app: FastAPI) -> None:
    """The inbox and a record's page, its opening and its heat map."""

    @app.get("/", response_class=HTMLResponse)
    def inbox(request: Request, console: ConsoleDep) -> HTMLResponse:
        return render(request, "inbox.html", inbox=inbox_of(console), names=console.names)

    @app.get("/records/{record}", response_class=HTMLResponse)
    def record_page(record: str, request: Request, console: ConsoleDep) -> HTMLResponse:
        manifest, report = console.manifest(_record(record))
        try:
            trail, refused = console.trail(record), None
        except errors.AccessDenied as error:  # public checks still show; the trail is not ours
            trail, refused = [], error.reason
        return render(
            request, "record.html", record=record, manifest=manifest, chain=manifest.chain,
            sealed=utc_iso(manifest.chain.timestamp), checks=report.get("checks", []),
            verdict=verdict_text(manifest), opened=console.opened.get(record),
            trail=trail, trail_refused=refused,
        )  # fmt: skip

    @app.post("/records/{record}/open", dependencies=[Depends(require_csrf)])
    def open_record(record: str, console: ConsoleDep) -> RedirectResponse:
        console.open(_record(record))
        return RedirectResponse(f"/records/{record}#image", status_code=303)

    @app.get("/records/{record}/heatmap.png")
    def heat_map(record: str, console: ConsoleDep) -> Response:
        picture = console.heat_map(_record(record))
        if picture is None:
            raise errors.NotFound("open the record first: its heat map is drawn on the image")
        return Response(picture, media_type="image/png")


def _audit_pages(app: FastAPI) -> None:
    """The audit search (the gateway's signed query, page by page) and its exports."""

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(
        request: Request, console: ConsoleDep, cursor: str | None = None, limit: int = PAGE_SIZE
    ) -> HTMLResponse:
        search = Search.of(request.query_params)
        if not 1 <= limit <= EXPORT_PAGE:
            raise InvalidInput(f"limit must be 1 to {EXPORT_PAGE}")
        context: dict[str, Any] = {"filters": search.as_dict(), "exports": list(EXPORTS)}
        if not set(request.query_params) & {*context["filters"], "cursor"}:
            return render(request, "audit.html", asked=False, **context)  # the empty form
        try:
            records = _records_of(console, search)
            page = console.query({**search.query(records), "limit": limit, "cursor": cursor})
        except ScanSealError as error:  # the gateway's refusal, said on the page
            return render(
                request, "audit.html", _status(error), asked=True, refused=str(error), **context
            )
        sized = {} if limit == PAGE_SIZE else {"limit": str(limit)}
        kept = urlencode({**{k: v for k, v in search.as_dict().items() if v}, **sized})
        return render(
            request, "audit.html", asked=True, refused=None, events=page["events"],
            chart=timeline_svg(page["events"]), query=kept, next=page["next"],
            first=cursor is None, repaired=page["repaired"], **context,
        )  # fmt: skip

    @app.get("/audit/export")
    def export(
        request: Request, console: ConsoleDep,
        format_: Annotated[str, Query(alias="format")] = "json",
    ) -> Response:  # fmt: skip
        if format_ not in EXPORTS:
            raise InvalidInput(f"format must be one of {', '.join(EXPORTS)}")
        search = Search.of(request.query_params)
        records = _records_of(console, search)
        found = console.client.audit_query(**search.query(records), limit=EXPORT_PAGE)
        source = audit.Source(f"gateway {console.client.domain.gateway}", console.client.url)
        body = export_text(format_, collect(found), console.names, source)
        media, suffix = EXPORTS[format_]
        name = (search.record or search.study or "query")[:16]
        disposition = f'attachment; filename="audit-{name}.{suffix}"'
        return Response(body, media_type=media, headers={"Content-Disposition": disposition})


def _records_of(console: Console, search: Search) -> list[str] | None:
    """The records the search names (a study's and a patient's from the user's catalogue,
    brought up to date only when one is asked for); None when it names none."""
    if not (search.record or search.study or search.patient):
        return None
    described = console.catalogued().records if search.study or search.patient else []
    return records_of(search, described)


def _tool_pages(app: FastAPI) -> None:
    """Verify a file; the gateway's health."""

    @app.get("/verify", response_class=HTMLResponse)
    def verify_form(request: Request) -> HTMLResponse:
        return render(request, "verify.html", result=None)

    @app.post("/verify", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
    def verify_file(
        request: Request, console: ConsoleDep, file: Annotated[UploadFile, File()]
    ) -> HTMLResponse:
        with tempfile.TemporaryDirectory(prefix="scanseal-upload-") as scratch:
            path = Path(scratch) / "upload"
            _save(file, path)
            result = check_file(console, file.filename or "upload", path)
        return render(request, "verify.html", result=result)

    @app.get("/health", response_class=HTMLResponse)
    def health(request: Request, console: ConsoleDep) -> HTMLResponse:
        return render(request, "health.html", health=console.client.health())


def _record(text: str) -> str:
    """The record's CID as given, once it parses as one (InvalidInput otherwise)."""
    CID.parse(text)
    return text


def _save(upload: UploadFile, path: Path) -> None:
    """Copy the upload to ``path`` (0600), refusing one larger than MAX_UPLOAD."""
    size = 0
    with path.open("xb") as out:
        path.chmod(0o600)
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise InvalidInput(f"the file is larger than {MAX_UPLOAD >> 20} MiB")
            out.write(chunk)


def _status(error: ScanSealError) -> int:
    return next((s for kind, s in STATUS.items() if isinstance(error, kind)), 502)


async def _scanseal_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ScanSealError)
    status = _status(error)
    return render(request, "error.html", status, reason=str(error), status=status)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    reason = str(error.detail) if error.status_code != 404 else "no such page"
    return render(request, "error.html", error.status_code, reason=reason, status=error.status_code)
