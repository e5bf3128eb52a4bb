"""The console's routes: server-rendered pages over the user's signed gateway requests.

Every page is HTML rendered here with Jinja2 (autoescaped); the script library (htmx) and the
style sheet are files of this package, served from ``/static``. Routes are plain functions run
in the server's thread pool, since each one waits on the gateway. A ScanSeal error becomes the
error page with its one-line reason and a 4xx status (502 when the gateway failed), never a
traceback.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from scanseal import audit, errors
from scanseal.console._chart import timeline_svg
from scanseal.console._guard import CSRF_FIELD, Guard, Secrets, require_csrf
from scanseal.console._match import check_file
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
EXPORTS: Final = {
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "fhir": ("application/fhir+json", "fhir.json"),
    "dicom": ("application/xml", "dicom.xml"),
}
FILTERS: Final = ("action", "outcome", "who", "since", "until")
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
        return render(request, "inbox.html", rows=console.inbox())

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
    """The audit search and its exports."""

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request, console: ConsoleDep, record: str = "") -> HTMLResponse:
        chosen = _filters(request)
        events = _filtered(console.trail(_record(record)), chosen) if record else []
        return render(
            request, "audit.html", record=record, events=events, filters=chosen,
            chart=timeline_svg(events), exports=list(EXPORTS), query=request.url.query,
        )  # fmt: skip

    @app.get("/audit/export")
    def export(
        request: Request, console: ConsoleDep, record: str,
        format_: Annotated[str, Query(alias="format")] = "json",
    ) -> Response:  # fmt: skip
        if format_ not in EXPORTS:
            raise InvalidInput(f"format must be one of {', '.join(EXPORTS)}")
        events = _filtered(console.trail(_record(record)), _filters(request))
        for event in events:
            event.pop("proof_check", None)
        source = audit.Source(f"gateway {console.client.domain.gateway}", console.client.url)
        body = {
            "json": lambda: audit.to_json(events),
            "csv": lambda: audit.to_csv(events),
            "fhir": lambda: audit.to_fhir_json(record, events, source),
            "dicom": lambda: audit.to_dicom_xml(record, events, source),
        }[format_]()
        media, suffix = EXPORTS[format_]
        disposition = f'attachment; filename="audit-{record[:16]}.{suffix}"'
        return Response(body, media_type=media, headers={"Content-Disposition": disposition})


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


def _filters(request: Request) -> dict[str, str]:
    """The audit filters of the query; ``since`` and ``until`` are UTC days (YYYY-MM-DD)."""
    chosen = {key: request.query_params.get(key, "").strip() for key in FILTERS}
    for key in ("since", "until"):
        if chosen[key]:
            try:
                chosen[key] = date.fromisoformat(chosen[key]).isoformat()
            except ValueError:
                raise InvalidInput(f"{key} must be a day as YYYY-MM-DD") from None
    return chosen


def _filtered(events: list[dict[str, Any]], chosen: dict[str, str]) -> list[dict[str, Any]]:
    """The events that pass every filter given (``who``: a name or address, either side)."""
    who = chosen["who"].lower()

    def keep(event: dict[str, Any]) -> bool:
        people = [event.get(k) for k in ("actor", "actor_name", "subject", "subject_name")]
        return (
            (not chosen["action"] or event.get("action") == chosen["action"])
            and (not chosen["outcome"] or event.get("outcome") == chosen["outcome"])
            and (not who or any(who in str(p or "").lower() for p in people))
            and (not chosen["since"] or str(event.get("time"))[:10] >= chosen["since"])
            and (not chosen["until"] or str(event.get("time"))[:10] <= chosen["until"])
        )

    return [event for event in events if keep(event)]


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


async def _scanseal_error(request: Request, error: Exception) -> Response:
    status = next((s for kind, s in STATUS.items() if isinstance(error, kind)), 502)
    return render(request, "error.html", status, reason=str(error), status=status)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    reason = str(error.detail) if error.status_code != 404 else "no such page"
    return render(request, "error.html", error.status_code, reason=reason, status=error.status_code)
