"""Refuse request bodies over a size limit without reading them whole.

A body whose Content-Length is over the limit is answered 413 before a byte of it is read; a
streamed (chunked) body is cut off with 413 as soon as it passes the limit. (FastAPI's own
``max_body_size`` does the same but answers a bare "Content Too Large" that cannot say the limit.)
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: bodies over ``max_bytes`` get ``413 {"detail": <message naming the limit>}``."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request too large: uploads are limited to {max_bytes / 2**20:.3g} MiB in all"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"detail": self.message}, 413)(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, self.message)  # FastAPI passes it on to the app's error handler
            return message

        await self.app(scope, limited_receive, send)
