"""What a request must satisfy before any page or socket sees it: loopback means loopback.

One ASGI middleware (``Guard``) in front of the whole NiceGUI app, HTTP and websocket alike:

- **Host allow-list** while the server listens on loopback: only ``127.0.0.1:PORT``, ``localhost:PORT``,
  ``[::1]:PORT`` (and the bound address with its port) are answered; any other Host gets 403. A page on another
  site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own name as Host and is refused.
- **Same origin** for every websocket, every socket.io request (``/_nicegui_ws/``) and every request that is not
  GET/HEAD: an ``Origin`` header must be this server's own (``http://`` + the Host it was asked for); a foreign
  or ``null`` Origin gets 403, so no other site can drive a page's socket or upload to it.
- **The launch token**: ``loralens serve`` makes a secret per launch and prints it in its URL, like Jupyter. A
  request carrying ``?token=`` is redirected to the same URL without it; when the token is right the redirect
  sets an HttpOnly, SameSite=Strict cookie (named after the port). Whatever reads the server's disk (the
  Inspector's folder) asks ``disk_refusal(request)``, which wants that cookie as well as loopback. SameSite=Strict
  keeps the cookie out of pages framed by, or linked from, another site.
- **A body cap**: a request body larger than the upload limit (plus room for the config file and the form) is
  refused up front from its Content-Length, and cut off with 413 while it streams in when it has none or lies.
- **Security headers** on every response: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``
  and a Content-Security-Policy that lets pages load only this server's own assets. NiceGUI's pages need
  ``'unsafe-inline'`` (the page's inline start-up script and styles) and ``'unsafe-eval'`` (Vue compiles the
  elements' templates in the browser). ``frame-ancestors * file:`` keeps the documented embedding (``?embed=1`` in a
  course site's iframe); a framed page never has the token cookie, so it never reads the disk.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from loralens.app import settings
from loralens.app.settings import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_PARAM = "token"
SOCKET_PREFIX = "/_nicegui_ws/"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
BODY_ALLOWANCE = 16 * 2**20  # room beside the weights file: the config file and the multipart framing

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors * file:",  # any site (http/https) and a course page opened from disk
))
HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode()),
)


def netloc(host: str, port: int) -> str:
    """``host:port`` as a Host header writes it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers answered while listening on ``host``; None (any) when it is not loopback."""
    if not is_loopback(host):
        return None
    names = {"127.0.0.1", "localhost", "::1", host.strip("[]")}
    return frozenset(netloc(name, port).lower() for name in names)


def cookie_name(port: int) -> str:
    """The token cookie, one per port: browsers send a host's cookies to every port of it."""
    return f"loralens-token-{port}"


def token_ok(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class Guard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, token: str | None, body_limit: int) -> None:
        self.app = app
        self.hosts = allowed_hosts(host, port)
        self.port = port
        self.token = token
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or "").lower()
        if self.hosts is not None and host not in self.hosts:
            await self.refuse(scope, receive, send, 403, "this server answers only to 127.0.0.1, localhost and [::1] "
                                                        f"on port {self.port} (Host header refused)")
            return
        origin = _header(scope, b"origin")
        method = scope.get("method", "GET")
        checks_origin = (scope["type"] == "websocket" or method not in SAFE_METHODS
                         or scope["path"].startswith(SOCKET_PREFIX))
        if checks_origin and origin is not None and origin.lower() != f"http://{host}":
            await self.refuse(scope, receive, send, 403, "cross-origin request refused")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if TOKEN_PARAM in dict(parse_qsl(query, keep_blank_values=True)):
            await self.redirect_token(scope, query, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.body_limit):
            await self.refuse(scope, receive, send, 413, f"request body larger than {self.body_limit:,} bytes")
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self.capped(receive), self.with_headers(tracking_send))
        except BodyTooLarge:
            if started:
                raise
            await self.refuse(scope, receive, send, 413, f"request body larger than {self.body_limit:,} bytes")

    def capped(self, receive: Receive) -> Receive:
        """``receive`` that ends the body (as a disconnect) once more than the limit has arrived."""
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_limit:
                    raise BodyTooLarge(received)
            return message

        return capped_receive

    def with_headers(self, send: Send) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()), *(h for h in HEADERS if h[0] not in present)]
            await send(message)

        return send_with_headers

    async def redirect_token(self, scope: Scope, query: str, send: Send) -> None:
        """Redirect to the same URL without ``token``; set the cookie when the token is this launch's."""
        pairs = parse_qsl(query, keep_blank_values=True)
        given = next(value for key, value in pairs if key == TOKEN_PARAM)
        rest = urlencode([(k, v) for k, v in pairs if k != TOKEN_PARAM])
        location = scope.get("root_path", "") + scope["path"] + ("?" + rest if rest else "")
        headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0"), *HEADERS]
        if self.token is not None and token_ok(given, self.token):
            cookie = f"{cookie_name(self.port)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            headers.append((b"set-cookie", cookie.encode()))
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def refuse(self, scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
            return
        body = (text + "\n").encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"), *HEADERS]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body streams past the limit; ``Guard`` turns it into 413."""


def disk_refusal(cookies: Mapping[str, str]) -> str | None:
    """Why a page of this request may not read the server's disk, or None when it may: the server must listen
    on loopback only, and (when launched by ``loralens serve``) the request must carry this launch's token."""
    current = settings.current
    if not current.local_files_allowed:
        return (f"opening a folder on the server's disk is turned off because the app listens on {current.host}; "
                "upload the two files instead")
    if current.token is not None and not token_ok(cookies.get(cookie_name(current.port)), current.token):
        return ("opening a folder on the server's disk needs the link with the token that 'loralens serve' "
                "printed; upload the two files instead")
    return None
