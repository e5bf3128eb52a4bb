"""Who may talk to the console: the one browser that was handed the one-time token.

The console listens on 127.0.0.1 and acts with the user's unlocked key, so every other local
program, and every web page the browser shows, must be kept out:

- the URL printed at start carries a one-time token; the first request with it gets an
  HttpOnly, SameSite=Strict session cookie and a redirect to the same URL without the token, and
  the token is spent (a second use is refused, so a token left in a history or a log is dead);
- any request without the session cookie or the live token is answered 401;
- the Host header must name 127.0.0.1 or localhost at the console's port, so a DNS-rebinding
  page (evil.example resolving to 127.0.0.1) is refused even though the socket is loopback;
- a POST must carry the session's CSRF token (a form field or the ``X-CSRF-Token`` header that
  the pages' script library sends), checked by :func:`require_csrf` in each POST route.

Every answer forbids caching, framing and referrers (the token must not leak to another site).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlencode

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE: Final = "scanseal_console"
TOKEN_PARAMETER: Final = "token"  # noqa: S105 (the query parameter's name)
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost"})
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass
class Secrets:
    """The launch token (spent on first use), the session cookie's value and the CSRF token."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    spent: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def exchange(self, offered: str) -> bool:
        """True once: for the first request that offers the right token."""
        with self._lock:
            if self.spent or not hmac.compare_digest(offered.encode(), self.token.encode()):
                return False
            self.spent = True
            return True

    def is_session(self, cookie: str | None) -> bool:
        return cookie is not None and hmac.compare_digest(cookie.encode(), self.session.encode())


class Guard:
    """ASGI middleware in front of every route and static file of the console."""

    def __init__(self, app: ASGIApp, keys: Secrets, port: int) -> None:
        self.app, self.keys, self.port = app, keys, port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the console has none: refused before anything runs
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is None:
            await self.app(scope, receive, _with_headers(send))
        else:
            await refusal(scope, receive, _with_headers(send))

    def _refusal(self, request: Request) -> Response | None:
        """The answer that stops this request here, or None to let it through."""
        if not self.host_allowed(request.headers.get("host", "")):
            return _plain(403, "this console answers only at 127.0.0.1 or localhost")
        offered = request.query_params.get(TOKEN_PARAMETER)
        if offered is not None:
            if not self.keys.exchange(offered):
                return _plain(401, "this console link was already used or is wrong")
            return self._start_session(request)
        if not self.keys.is_session(request.cookies.get(COOKIE)):
            return _plain(401, "open the console with the link scanseal console printed")
        return None

    def host_allowed(self, host: str) -> bool:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        return name.lower() in LOCAL_HOSTS and port == str(self.port)

    def _start_session(self, request: Request) -> Response:
        rest = [(k, v) for k, v in parse_qsl(request.url.query) if k != TOKEN_PARAMETER]
        path = "/" + request.url.path.lstrip("/")  # never "//host": a redirect off this origin
        target = path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, self.keys.session, httponly=True, samesite="strict", path="/")
        return response


async def require_csrf(request: Request) -> None:
    """A POST route's dependency: the session's CSRF token in the header or the form, else 403."""
    keys: Secrets = request.app.state.secrets
    offered = request.headers.get(CSRF_HEADER)
    if offered is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        offered = value if isinstance(value, str) else None
    if offered is None or not hmac.compare_digest(offered.encode(), keys.csrf.encode()):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")


def _plain(status: int, text: str) -> Response:
    return PlainTextResponse(text + "\n", status_code=status)


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
        await send(message)

    return sending
