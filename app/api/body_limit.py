"""A request body larger than the limit is refused before anything reads it (413).

An ASGI middleware rather than a check in the route: FastAPI would otherwise buffer and
parse the whole body first. A declared Content-Length is checked at once; a chunked body
is counted as it arrives and cut off at the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import BODY_TOO_LARGE, problem_response


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            # Raised inside the route's body read: FastAPI passes HTTPExceptions on, and the
            # app's handler makes the same 413 problem document of it.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(BODY_TOO_LARGE.status, self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(BODY_TOO_LARGE, self._detail(), headers={"Connection": "close"})(scope, receive, send)
