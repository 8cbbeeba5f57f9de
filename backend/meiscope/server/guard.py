"""Who may talk to the server: an ASGI middleware in front of every route, the page and the websocket.

- Token: when one is configured, every request needs it, as `Authorization: Bearer T`, as `?token=T`
  (the link `meiscope serve` prints) or as the cookie that such a link sets, so that the page's own
  fetch and websocket calls carry it without any code of theirs.
- Host: with a list of allowed host names (loopback serving), a request for any other Host is refused,
  which stops DNS-rebinding pages from reaching a server on 127.0.0.1.
- Origin: a browser request that changes something (a websocket, a POST) from a page of another origin
  is refused: no cross-site runs. There is no CORS.
- Size: a request body must state its length (no chunked uploads) and stay within `max_body_bytes`.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

COOKIE = "meiscope_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _hostname(host_header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1'."""
    return urlsplit(f"//{host_header}").hostname or ""


class Guard:
    def __init__(self, app, token: str | None = None, allowed_hosts: Iterable[str] | None = None,
                 max_body_bytes: int = 1 << 20) -> None:
        self.app = app
        self.token = token or None
        self.allowed_hosts = set(allowed_hosts) if allowed_hosts is not None else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        query_token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        refusal = self._refusal(scope, headers, query_token)
        if refusal is not None:
            status, message = refusal
            return await self._refuse(scope, receive, send, status, message)
        if self.token and query_token and scope["type"] == "http":
            send = self._setting_cookie(send)
        return await self.app(scope, receive, send)

    def _refusal(self, scope, headers: dict[str, str], query_token: str | None) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            return 400, f"host {_hostname(host)!r} is not served here (allowed: {', '.join(sorted(self.allowed_hosts))})"
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if changes and origin and origin != "null" and urlsplit(origin).netloc != host:
            return 403, f"requests from another origin ({origin}) are not allowed"
        if self.token and not hmac.compare_digest(self._given_token(headers, query_token).encode(), self.token.encode()):
            return 401, "this server needs its token: open the link that `meiscope serve` printed, or send " \
                        "'Authorization: Bearer TOKEN'"
        return self._size_refusal(scope, headers)

    def _size_refusal(self, scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if scope["type"] != "http" or scope.get("method", "GET") in SAFE_METHODS:
            return None
        length = headers.get("content-length")
        if length is None:
            return (411, "send the body with a Content-Length") if "transfer-encoding" in headers else None
        if not length.isdigit() or int(length) > self.max_body_bytes:
            return 413, f"a request body may have at most {self.max_body_bytes} bytes, got {length[:20]}"
        return None

    @staticmethod
    def _given_token(headers: dict[str, str], query_token: str | None) -> str:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if query_token:
            return query_token
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is simply no token
            return ""
        return cookie[COOKIE].value if COOKIE in cookie else ""

    async def _refuse(self, scope, receive, send, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # the websocket.connect event; closing before accept answers the handshake 403
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = json.dumps({"detail": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _setting_cookie(self, send):
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode("latin-1")

        async def wrapped(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        return wrapped
