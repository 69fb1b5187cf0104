"""A deadline on reading request bodies, so a client that trickles a body in (or stops
sending half-way) is answered 408 and let go instead of being waited for forever."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import ApiError

__all__ = ["BodyDeadline", "BodyTooSlow", "DEFAULT_BODY_TIMEOUT"]

#: Seconds a client has to send a whole request body (a 20 MB upload at 1 MB/s fits).
DEFAULT_BODY_TIMEOUT = 30.0

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


class BodyTooSlow(ApiError):
    """The request body did not arrive in time (408)."""

    def __init__(self, seconds: float) -> None:
        message = f"the request body did not arrive within {seconds:g} s: send it again"
        # The rest of the body may still be on its way: the connection cannot be reused.
        super().__init__(408, message, headers={"Connection": "close"})


class BodyDeadline:
    """ASGI middleware: the whole body of a request must arrive within ``seconds`` of its
    start; past that, reading it raises BodyTooSlow. Waiting for the client to go away
    (after the body) is never cut short."""

    def __init__(
        self, app: Callable[[_Scope, _Receive, _Send], Awaitable[None]], *, seconds: float
    ) -> None:
        if not 0 < seconds < math.inf:
            raise ValueError(f"the body timeout must be above 0 seconds, not {seconds}")
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._deadlined(receive), send)

    def _deadlined(self, receive: _Receive) -> _Receive:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False

        async def receive_in_time() -> _Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return receive_in_time
