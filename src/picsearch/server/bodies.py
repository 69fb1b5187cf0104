"""Limits on reading request bodies, in time and in size.

A client that trickles a body in (or stops sending half-way) is answered 408
and let go instead of being waited for forever; one that sends more than a
route takes is answered 413 before the rest is read, so no request makes the
server hold more than its route's limit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .errors import ApiError

__all__ = ["BodyLimits", "BodyTooSlow", "BodyTooLarge", "DEFAULT_BODY_TIMEOUT", "SMALL_BODY"]

#: Seconds a client has to send a whole request body (a 20 MB upload at 1 MB/s fits).
DEFAULT_BODY_TIMEOUT = 30.0
#: Bytes a request body may have on routes that take no upload (JSON of a few fields).
SMALL_BODY = 64 * 1024

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
# The rest of the body may still be on its way: the connection cannot be reused.
_CLOSE = {"Connection": "close"}


class BodyTooSlow(ApiError):
    """The request body did not arrive in time (408)."""

    def __init__(self, seconds: float) -> None:
        message = f"the request body did not arrive within {seconds:g} s: send it again"
        super().__init__(408, message, headers=_CLOSE)


class BodyTooLarge(ApiError):
    """The request body is larger than its route takes (413)."""

    def __init__(self, limit: int) -> None:
        message = f"the request body is too large: this route takes at most {limit:,} bytes"
        super().__init__(413, message, headers=_CLOSE)


class BodyLimits:
    """ASGI middleware: the whole body of a request must arrive within ``seconds`` of its
    start, and be at most ``sizes[path]`` bytes (``SMALL_BODY`` for paths not named;
    None: the route counts itself); reading it raises BodyTooSlow or BodyTooLarge
    otherwise. Waiting for the client to go away (after the body) is never cut short."""

    def __init__(
        self,
        app: Callable[[_Scope, _Receive, _Send], Awaitable[None]],
        *,
        seconds: float,
        sizes: Mapping[str, int | None] | None = None,
    ) -> None:
        if not 0 < seconds < math.inf:
            raise ValueError(f"the body timeout must be above 0 seconds, not {seconds}")
        self.app, self.seconds, self.sizes = app, seconds, dict(sizes or {})

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.sizes.get(scope["path"], SMALL_BODY)
        await self.app(scope, self._limited(receive, limit), send)

    def _limited(self, receive: _Receive, limit: int | None) -> _Receive:
        deadline = asyncio.get_running_loop().time() + self.seconds
        received, body_done = 0, False

        async def receive_within_limits() -> _Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None
            if message["type"] != "http.request":
                body_done = True
                return message
            received += len(message.get("body", b""))
            if limit is not None and received > limit:
                raise BodyTooLarge(limit)
            body_done = not message.get("more_body", False)
            return message

        return receive_within_limits
