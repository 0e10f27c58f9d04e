"""The application: a FastAPI app around one :class:`Stylist`, with the page's routes
(:mod:`adain.app.pages`) and the API's (:mod:`adain.app.api`).

Every error is an HTTP 4xx/5xx whose JSON body is ``{"detail": "<one line>"}``, which the page
shows as it is; a bad request never stops the server.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import api, pages
from .assets import load_assets
from .bodylimit import BodyLimit
from .gallery import Gallery
from .job_queue import Stylist


def create_app(stylist: Stylist, gallery: Gallery | None = None) -> FastAPI:
    """The application: the page at ``/``, the API under ``/api``, its docs at ``/docs``."""
    app = FastAPI(
        title="AdaIN style transfer",
        description="Fast arbitrary style transfer (Huang & Belongie, ICCV 2017). The page at `/` uses this API.",
        version="1.0",
        docs_url=None,  # served by pages.api_docs from local files, not from FastAPI's default CDN
        redoc_url=None,
    )
    app.state.stylist = stylist
    app.state.gallery = gallery if gallery is not None else Gallery.load()
    app.state.page, app.state.docs = load_assets()
    app.add_middleware(BodyLimit, max_bytes=stylist.limits.max_request_bytes)
    app.add_exception_handler(RequestValidationError, one_line_validation_error)
    app.add_exception_handler(Exception, server_fault)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


async def one_line_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's validation errors as one line naming the parameter, like every other error."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}" if where else first["msg"]}, 422)


async def server_fault(request: Request, exc: Exception) -> JSONResponse:
    """A fault of the server's own (a bug, a full disk) as the same JSON as every other error, naming
    only its kind: its message may hold server paths. Starlette logs the traceback after answering."""
    return JSONResponse({"detail": f"internal server error ({type(exc).__name__}); the server's log has the details"}, 500)
