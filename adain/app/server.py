"""The HTTP API and the page: a FastAPI application around one :class:`Stylist`.

Every error is an HTTP 4xx/5xx whose JSON body is ``{"detail": "<one line>"}``, which the page
shows as it is; a bad request never stops the server.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

import torch
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from adain.errors import one_line
from adain.request import ImageSource

from .assets import Asset, load_assets
from .bodylimit import BodyLimit
from .gallery import KINDS, Example, Gallery
from .stylist import MAX_STYLES, ClientGone, Job, QueueFull, Stylist

CLIENT_CLOSED = 499  # nginx's status for "the client went away before the answer"
IMAGE_RESPONSES = {"content": {f"image/{t}": {} for t in ("png", "jpeg", "webp")}, "description": "the image"}


class ErrorMessage(BaseModel):
    """Every error answer's body."""

    detail: str = Field(description="what went wrong, on one line")


NOT_FOUND = {404: {"model": ErrorMessage, "description": "no such example"}}
BAD_REQUEST = {422: {"model": ErrorMessage, "description": "a bad parameter (the message names it)"}}
STYLIZE_ERRORS = {
    413: {"model": ErrorMessage, "description": "the request body is over the upload limit"},
    422: {"model": ErrorMessage, "description": "a bad parameter, or an upload that is not a usable image"},
    503: {"model": ErrorMessage, "description": "the queue is full, or the accelerator ran out of memory"},
}


def create_app(stylist: Stylist, gallery: Gallery | None = None) -> FastAPI:
    """The application: the page at ``/``, the API under ``/api``, its docs at ``/docs``."""
    gallery = gallery if gallery is not None else Gallery.load()
    page, docs = load_assets()
    limits = stylist.limits
    app = FastAPI(
        title="AdaIN style transfer",
        description="Fast arbitrary style transfer (Huang & Belongie, ICCV 2017). The page at `/` uses this API.",
        version="1.0",
        docs_url=None,  # served below from local files, not from FastAPI's default CDN
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}" if where else first["msg"]}, 422)

    def asset(table: dict[str, Asset], name: str) -> Response:
        found = table.get(name)
        if found is None:
            raise HTTPException(404, f"no such file: {name}")
        return Response(found.data, media_type=found.media_type, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return asset(page, "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def page_file(name: str) -> Response:
        return asset(page, name)

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} – API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None},  # no call to the online validator
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_file(name: str) -> Response:
        return asset(docs, name)

    @app.get("/api/health", tags=["server"], summary="Is the server up, and what is it running?")
    async def health() -> dict:
        model = stylist.model
        return {
            "status": "ok",
            "device": model.device.type,
            "precision": model.precision,
            "encoder": model.encoder.identity,
            "queue": {"pending": stylist.pending, "max": limits.max_queue},
            "style_cache": {
                "entries": len(stylist.codes),
                "hits": stylist.codes.hits,
                "misses": stylist.codes.misses,
                "max": limits.style_cache,
            },
            "limits": asdict(limits) | {"max_styles": MAX_STYLES},
        }

    @app.get("/api/examples", tags=["examples"], summary="The bundled example photos and paintings")
    async def examples() -> dict:
        return {
            kind: [
                {
                    "name": ex.name,
                    "title": ex.title,
                    "image": f"/api/examples/{kind}/{ex.name}",
                    "thumbnail": f"/api/examples/{kind}/{ex.name}/thumbnail",
                }
                for ex in gallery.examples[kind].values()
            ]
            for kind in KINDS
        }

    def example(kind: str, name: str) -> Example:
        try:
            return gallery.get(kind, name)
        except ValueError as err:
            raise HTTPException(404, str(err)) from None

    @app.get(
        "/api/examples/{kind}/{name}",
        tags=["examples"],
        summary="A bundled example image",
        responses={200: IMAGE_RESPONSES, **NOT_FOUND, **BAD_REQUEST},
    )
    async def example_image(kind: Literal["content", "style"], name: str) -> Response:
        found = example(kind, name)
        return Response(found.data, media_type=found.media_type)

    @app.get(
        "/api/examples/{kind}/{name}/thumbnail",
        tags=["examples"],
        summary="Its square JPEG thumbnail",
        responses={200: IMAGE_RESPONSES, **NOT_FOUND, **BAD_REQUEST},
    )
    async def example_thumbnail(kind: Literal["content", "style"], name: str) -> Response:
        return Response(example(kind, name).thumbnail, media_type="image/jpeg")

    @app.post(
        "/api/stylize",
        tags=["stylise"],
        summary="Stylise a photo with one to four paintings",
        response_class=Response,
        responses={200: IMAGE_RESPONSES, **STYLIZE_ERRORS},
    )
    async def stylize(
        request: Request,
        content: Annotated[UploadFile | None, File(description="the photo (or name a bundled one in content_example)")] = None,
        content_example: Annotated[str | None, Form(description="a bundled photo's name (see /api/examples)")] = None,
        style: Annotated[list[UploadFile] | None, File(description="painting files, in order")] = None,
        style_example: Annotated[list[str] | None, Form(description="bundled paintings' names, after the files")] = None,
        style_weights: Annotated[
            list[float] | None, Form(description="one weight per style (files first, then examples); normalised to sum 1")
        ] = None,
        alpha: Annotated[float, Form(ge=0, le=1, description="style strength")] = 1.0,
        preserve_color: Annotated[Literal["none", "coral", "luminance"], Form(description="keep the photo's colours")] = "none",
        mask: Annotated[UploadFile | None, File(description="white → first style, black → second (two styles)")] = None,
        content_size: Annotated[int, Form(ge=0, description="output's shorter side in px; 0 keeps the photo's")] = 512,
        style_size: Annotated[int, Form(ge=0, description="paintings' shorter side in px; 0 keeps theirs")] = 512,
        crop: Annotated[bool, Form(description="centre-crop photo and paintings to squares")] = False,
        format: Annotated[Literal["png", "jpeg", "webp"], Form(description="the answer's image format")] = "png",
    ) -> Response:
        """The same options as `infer.py`. Styles are the uploaded `style` files in order, then the
        `style_example` names in order; `style_weights` follow that order. The answer is the image,
        with `X-Render-Seconds` saying how long the model took."""
        try:
            if (content is None) == (content_example is None):
                raise ValueError("give exactly one content image: a content file or a content_example name")
            styles = [ImageSource(await f.read(), f"style {i + 1}") for i, f in enumerate(style or [])]
            styles += [ImageSource(gallery.get("style", n).data, f"style {n!r}") for n in style_example or []]
            job = Job(
                content=(
                    ImageSource(await content.read(), "content image")
                    if content is not None
                    else ImageSource(gallery.get("content", content_example).data, f"content {content_example!r}")
                ),
                styles=tuple(styles),
                alpha=alpha,
                style_weights=None if style_weights is None else tuple(style_weights),
                preserve_color=None if preserve_color == "none" else preserve_color,
                mask=None if mask is None else ImageSource(await mask.read(), "mask"),
                content_size=content_size,
                style_size=style_size,
                crop=crop,
                format=format,
            )
            result = await stylist.submit(job, request.is_disconnected)
        except ValueError as err:  # includes ImageError (one line naming the image) and UnknownExample
            raise HTTPException(422, one_line(err)) from None
        except QueueFull as err:
            raise HTTPException(503, str(err), headers={"Retry-After": str(err.retry_after)}) from None
        except ClientGone as err:
            raise HTTPException(CLIENT_CLOSED, str(err)) from None
        except torch.cuda.OutOfMemoryError:
            raise HTTPException(503, "out of accelerator memory at this size; lower content_size") from None
        return Response(
            result.data,
            media_type=result.media_type,
            headers={
                "Content-Disposition": f'inline; filename="stylized.{format}"',
                "Cache-Control": "no-store",
                "X-Render-Seconds": f"{result.seconds:.3f}",
                "X-Image-Size": f"{result.width}x{result.height}",
            },
        )

    return app
