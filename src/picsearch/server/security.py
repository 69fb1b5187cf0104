"""Who may talk to the server: the bind rule, the access token, the Host check.

Without a token the server only listens on loopback, and it answers only
requests addressed to a loopback name (a page elsewhere cannot reach it
through DNS rebinding). With a token, every API and image request must
carry it: ``Authorization: Bearer TOKEN``, or the cookie the page gets from
``POST /api/session``. The page's own files hold no data and stay public.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers

from ..errors import InvalidInput
from .errors import error_response

__all__ = [
    "COOKIE",
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENV",
    "check_bind",
    "is_loopback",
    "host_name",
    "token_matches",
    "session_value",
    "AccessGuard",
]

TOKEN_ENV = "PICSEARCH_TOKEN"
COOKIE = "picsearch_token"
MIN_TOKEN_LENGTH = 16
#: Paths anyone may fetch: the page itself (no data in it) and the token exchange.
PUBLIC_PATHS = frozenset({"/", "/static/app.js", "/static/style.css", "/api/session"})

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback interface."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (a one-line reason)."""
    if is_loopback(host):
        return
    if not token:
        raise InvalidInput(
            f"refusing to listen on {host} without an access token: anyone who can reach "
            f"it could see your photos; pass --token or set ${TOKEN_ENV} "
            "(or use the default --host 127.0.0.1)"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise InvalidInput(
            f"the access token is too short ({len(token)} characters): use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison, so response times do not leak the token."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, not the token itself."""
    return hashlib.sha256(b"picsearch-session:" + token.encode("utf-8")).hexdigest()


# A Host header is a bracketed IPv6 address or a name (or IPv4 address), then an optional
# port, and nothing else: anything looser lets "[::1]evil.com" pass for loopback.
_HOST = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::[0-9]{1,5})?")


def host_name(header: str) -> str | None:
    """The host in a Host header (``[::1]:8000`` → ``::1``, ``localhost:80`` →
    ``localhost``), or None if the header is not exactly a host and an optional port."""
    match = _HOST.fullmatch(header)
    if match is None:
        return None
    if match["ipv6"] is None:
        return match["name"]
    try:
        return str(ipaddress.IPv6Address(match["ipv6"]))
    except ValueError:
        return None


def _bearer(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _cookie(headers: Headers) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


class AccessGuard:
    """ASGI middleware: the Host check, the token check, and safe response headers."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope["path"], Headers(scope=scope))
        if refusal is not None:
            status, message, extra = refusal
            await error_response(status, message, headers=extra)(scope, receive, _secured(send))
            return
        await self.app(scope, receive, _secured(send))

    def _refusal(self, path: str, headers: Headers) -> tuple[int, str, dict[str, str]] | None:
        if self.token is None:
            name = host_name(headers.get("host", ""))
            if name is None or not is_loopback(name):
                return 400, "this server answers only on its loopback address", {}
            return None
        if path in PUBLIC_PATHS:
            return None
        if token_matches(_bearer(headers), self.token) or token_matches(
            _cookie(headers), session_value(self.token)
        ):
            return None
        return (
            401,
            "an access token is needed: open the page and enter it",
            {"WWW-Authenticate": "Bearer"},
        )


def _secured(send: _Send) -> _Send:
    """Add the safe headers to the response that ``send`` starts."""

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *_HEADERS]
        await send(message)

    return wrapped
