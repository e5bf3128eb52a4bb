"""The access log: one line per HTTP request, written when its answer has gone out.

Each line names the method, the route template (``/v1/records/{record}``, never the record
itself), the status, the time to answer, the source address and, when the request's signed
headers authenticated, the requester's address. The requester is known only inside the gateway
(after the signature, window and nonce held): :func:`note_requester` puts it in a slot the
request's context carries into the worker thread, and :class:`AccessLog` reads it back.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scanseal.service._http import logged

LOG: Final = logging.getLogger("scanseal.access")
ROUTE_KEY: Final = "scanseal.route"
"""Where a route answered before FastAPI's routing (the fetch front) puts its template."""
_PATH_SHOWN: Final = 200
_SLOT: ContextVar[list[str] | None] = ContextVar("scanseal_requester", default=None)


def note_requester(address: str) -> None:
    """The request being answered authenticated as ``address`` (for its access line)."""
    slot = _SLOT.get()
    if slot is not None:
        slot.append(address)


class AccessLog:
    """ASGI middleware in front of the whole application (the fetch front included). A defect
    the application answered (a JSON 500, its traceback logged) ends here instead of going
    on to uvicorn, which would log it again."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        slot: list[str] = []
        token = _SLOT.set(slot)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        except Exception as error:
            if not logged(error):  # an answered defect is logged once, where it was answered
                raise
        finally:
            _SLOT.reset(token)
            self._line(scope, status, time.perf_counter() - started, slot)

    def _line(self, scope: Scope, status: int, seconds: float, requester: list[str]) -> None:
        method, route = str(scope.get("method", "")), self._route(scope)
        client = scope.get("client")
        fields = {
            "method": method,
            "route": route,
            "status": status or None,  # 0: the connection ended before an answer started
            "duration_ms": round(seconds * 1000, 2),
            "requester": requester[-1] if requester else None,
            "source": f"{client[0]}:{client[1]}" if client else None,
        }
        if route is None:  # no route: the path (a scanner's probe, a typo) is all there is
            fields["path"] = str(scope.get("path", ""))[:_PATH_SHOWN]
        level = logging.WARNING if status >= 500 or not status else logging.INFO
        shown = route if route is not None else fields["path"]
        LOG.log(level, "%s %s %s %.1f ms", method, shown, status or "-", seconds * 1000,
                extra={"fields": fields})  # fmt: skip

    @staticmethod
    def _route(scope: Scope) -> str | None:
        route = scope.get("route")
        template = getattr(route, "path", None)
        if isinstance(template, str):
            return template
        answered = scope.get(ROUTE_KEY)  # a route answered before FastAPI's routing
        return answered if isinstance(answered, str) else None
