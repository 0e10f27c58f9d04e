"""The HTTP API under ``/api``: health, the bundled examples, and stylizing.

The routes find the server's :class:`~adain.app.job_queue.Stylist` and
:class:`~adain.app.gallery.Gallery` on ``request.app.state`` (set by :func:`adain.app.server.create_app`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import torch
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from adain.core.errors import one_line
from adain.core.options import VIDEO_EXTENSIONS, VIDEO_SMOOTHING
from adain.jobs.request import ImageSource
from adain.media.video_io import WriteError

from .gallery import KINDS, Example, Gallery
from .job_queue import MAX_STYLES, VIDEO_FORMATS, ClientGone, Job, QueueFull, Rendered, VideoJob

router = APIRouter(prefix="/api")

CLIENT_CLOSED = 499  # nginx's status for "the client went away before the answer"
IMAGE_RESPONSES = {"content": {f"image/{t}": {} for t in ("png", "jpeg", "webp")}, "description": "the image"}
VIDEO_RESPONSES = {"content": {f"video/{t}": {} for t in VIDEO_FORMATS}, "description": "the clip"}


class ErrorMessage(BaseModel):
    """Every error answer's body."""

    detail: str = Field(description="what went wrong, on one line")


NOT_FOUND = {404: {"model": ErrorMessage, "description": "no such example"}}
BAD_REQUEST = {422: {"model": ErrorMessage, "description": "a bad parameter (the message names it)"}}
STYLIZE_ERRORS = {
    413: {"model": ErrorMessage, "description": "the request body is over the upload limit"},
    422: {"model": ErrorMessage, "description": "a bad parameter, or an upload that is not a usable image or clip"},
    500: {"model": ErrorMessage, "description": "the server could not write the stylized clip"},
    503: {"model": ErrorMessage, "description": "the queue is full, or the accelerator ran out of memory"},
}


@router.get("/health", tags=["server"], summary="Is the server up, and what is it running?")
async def health(request: Request) -> dict:
    stylist = request.app.state.stylist
    model, limits = stylist.model, stylist.limits
    return {
        "status": "ok",
        "device": model.device.type,
        "precision": model.precision,
        "compile": model.compile_mode,
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


@router.get("/examples", tags=["examples"], summary="The bundled example photos and paintings")
async def examples(request: Request) -> dict:
    gallery = request.app.state.gallery
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


def example(request: Request, kind: str, name: str) -> Example:
    """A bundled example, or 404."""
    try:
        return request.app.state.gallery.get(kind, name)
    except ValueError as err:
        raise HTTPException(404, str(err)) from None


@router.get(
    "/examples/{kind}/{name}",
    tags=["examples"],
    summary="A bundled example image",
    responses={200: IMAGE_RESPONSES, **NOT_FOUND, **BAD_REQUEST},
)
async def example_image(request: Request, kind: Literal["content", "style"], name: str) -> Response:
    found = example(request, kind, name)
    return Response(found.data, media_type=found.media_type)


@router.get(
    "/examples/{kind}/{name}/thumbnail",
    tags=["examples"],
    summary="Its square JPEG thumbnail",
    responses={200: IMAGE_RESPONSES, **NOT_FOUND, **BAD_REQUEST},
)
async def example_thumbnail(request: Request, kind: Literal["content", "style"], name: str) -> Response:
    return Response(example(request, kind, name).thumbnail, media_type="image/jpeg")


# The form fields both stylizing endpoints take alike, declared once.
StyleFiles = Annotated[list[UploadFile] | None, File(description="painting files, in order")]
StyleExamples = Annotated[list[str] | None, Form(description="bundled paintings' names, after the files")]
StyleWeights = Annotated[
    list[float] | None, Form(description="one weight per style (files first, then examples); normalised to sum 1")
]
Alpha = Annotated[float, Form(description="style strength, in [0, 1]")]
Mask = Annotated[UploadFile | None, File(description="white → first style, black → second (two styles)")]
StyleSize = Annotated[int, Form(description="paintings' shorter side in px; 0 keeps theirs")]
SMOOTHING = "in [0, 1): how much of the last output frame stays where the clip is still (0: none)"


async def shared_fields(
    gallery: Gallery,
    style: list[UploadFile] | None,
    style_example: list[str] | None,
    style_weights: list[float] | None,
    alpha: float,
    preserve_color: str,
    mask: UploadFile | None,
    content_size: int,
    style_size: int,
) -> dict[str, object]:
    """What both stylizing endpoints take, as :class:`~adain.jobs.request.Request` fields: the uploaded
    style files in order, then the named bundled paintings in order, and the options."""
    styles = [ImageSource(await f.read(), f"style {i + 1}") for i, f in enumerate(style or [])]
    styles += [ImageSource(gallery.get("style", n).data, f"style {n!r}") for n in style_example or []]
    return {
        "styles": tuple(styles),
        "alpha": alpha,
        "style_weights": None if style_weights is None else tuple(style_weights),
        "preserve_color": None if preserve_color == "none" else preserve_color,
        "mask": None if mask is None else ImageSource(await mask.read(), "mask"),
        "content_size": content_size,
        "style_size": style_size,
    }


@asynccontextmanager
async def saved_clip(upload: UploadFile) -> AsyncIterator[Path]:
    """The uploaded clip as a file for FFmpeg to read, in a temporary folder named by the server (only
    a video extension of the upload's name is kept), deleted afterwards. The disk work runs in a worker
    thread: on the event loop, writing a large clip would hold up every other request meanwhile."""
    folder = await run_in_threadpool(tempfile.TemporaryDirectory)
    try:
        suffix = Path(upload.filename or "").suffix.lower()
        path = Path(folder.name) / f"content{suffix if suffix in VIDEO_EXTENSIONS else '.mp4'}"
        await run_in_threadpool(copy_upload, upload, path)
        yield path
    finally:
        await run_in_threadpool(folder.cleanup)


def copy_upload(upload: UploadFile, path: Path) -> None:
    """Write the upload's whole file to ``path`` (blocking: call it in a worker thread)."""
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)


@contextmanager
def answered(renamed: dict[str, str] | None = None) -> Iterator[None]:
    """The stylizing endpoints' failures as HTTP answers; ``renamed``: words replaced in messages
    (a temporary file's path by what the client sent). Writing the output is the server's own
    work, so its failure is a 500, named without its temporary path."""
    try:
        yield
    except WriteError as err:
        raise HTTPException(500, f"output video: {err.reason}") from None
    except ValueError as err:  # includes ImageError and VideoError (one line naming the file) and UnknownExample
        message = one_line(err)
        for old, new in (renamed or {}).items():
            message = message.replace(old, new)
        raise HTTPException(422, message) from None
    except QueueFull as err:
        raise HTTPException(503, str(err), headers={"Retry-After": str(err.retry_after)}) from None
    except ClientGone as err:
        raise HTTPException(CLIENT_CLOSED, str(err)) from None
    except torch.cuda.OutOfMemoryError:
        raise HTTPException(503, "out of accelerator memory at this size; lower content_size") from None


def rendered_response(result: Rendered, filename: str) -> Response:
    """The stylized file, with how long the model took and the size (and frame count) it has."""
    headers = {
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "no-store",
        "X-Render-Seconds": f"{result.seconds:.3f}",
        "X-Image-Size": f"{result.width}x{result.height}",
    }
    if result.media_type.startswith("video/"):
        headers["X-Frames"] = str(result.frames)
    return Response(result.data, media_type=result.media_type, headers=headers)


@router.post(
    "/stylize",
    tags=["stylize"],
    summary="Stylize a photo with one to four paintings",
    response_class=Response,
    responses={200: IMAGE_RESPONSES, **STYLIZE_ERRORS},
)
async def stylize(
    request: Request,
    content: Annotated[UploadFile | None, File(description="the photo (or name a bundled one in content_example)")] = None,
    content_example: Annotated[str | None, Form(description="a bundled photo's name (see /api/examples)")] = None,
    style: StyleFiles = None,
    style_example: StyleExamples = None,
    style_weights: StyleWeights = None,
    alpha: Alpha = 1.0,
    preserve_color: Annotated[Literal["none", "coral", "luminance"], Form(description="keep the photo's colours")] = "none",
    mask: Mask = None,
    content_size: Annotated[int, Form(description="output's shorter side in px; 0 keeps the photo's")] = 512,
    style_size: StyleSize = 512,
    crop: Annotated[bool, Form(description="centre-crop photo and paintings to squares")] = False,
    format: Annotated[Literal["png", "jpeg", "webp"], Form(description="the answer's image format")] = "png",
) -> Response:
    """The same options as `infer.py`, checked as everywhere (`adain.jobs.request.Request`). Styles are
    the uploaded `style` files in order, then the `style_example` names in order; `style_weights`
    follow that order. The answer is the image, with `X-Render-Seconds` saying how long the model took."""
    gallery, stylist = request.app.state.gallery, request.app.state.stylist
    with answered():
        if (content is None) == (content_example is None):
            raise ValueError("give exactly one content image: a content file or a content_example name")
        job = Job(
            content=(
                ImageSource(await content.read(), "content image")
                if content is not None
                else ImageSource(gallery.get("content", content_example).data, f"content {content_example!r}")
            ),
            crop=crop,
            format=format,
            **await shared_fields(
                gallery, style, style_example, style_weights, alpha, preserve_color, mask, content_size, style_size
            ),
        )
        result = await stylist.submit(job, request.is_disconnected)
    return rendered_response(result, f"stylized.{format}")


@router.post(
    "/stylize-video",
    tags=["stylize"],
    summary="Stylize a short clip with one to four paintings",
    response_class=Response,
    responses={200: VIDEO_RESPONSES, **STYLIZE_ERRORS},
)
async def stylize_video(
    request: Request,
    content: Annotated[UploadFile, File(description="the clip (MP4, MOV, MKV, WebM, AVI, …), at most the server's frame limit")],
    style: StyleFiles = None,
    style_example: StyleExamples = None,
    style_weights: StyleWeights = None,
    alpha: Alpha = 1.0,
    preserve_color: Annotated[Literal["none", "coral", "luminance"], Form(description="keep the clip's colours")] = "none",
    mask: Mask = None,
    content_size: Annotated[int, Form(description="frames' shorter side in px; 0 keeps the clip's")] = 512,
    style_size: StyleSize = 512,
    smoothing: Annotated[float, Form(description=SMOOTHING)] = VIDEO_SMOOTHING,
    format: Annotated[Literal["mp4", "webm"], Form(description="H.264 + AAC in MP4, or VP9 + Opus in WebM")] = "mp4",
) -> Response:
    """`infer.py`'s video path (`adain.jobs.video.stylize_video`): the same frame rate, frame count and
    audio, frames at `content_size`. One clip holds the model for all its frames, so the server
    takes at most `max_video_frames` (see /api/health). The answer is the clip, with `X-Frames`."""
    gallery, stylist = request.app.state.gallery, request.app.state.stylist
    async with saved_clip(content) as path:
        with answered({str(path): "content video"}):
            job = VideoJob(
                content=ImageSource(path, "content video"),
                format=format,
                smoothing=smoothing,
                **await shared_fields(
                    gallery, style, style_example, style_weights, alpha, preserve_color, mask, content_size, style_size
                ),
            )
            result = await stylist.submit(job, request.is_disconnected)
    return rendered_response(result, f"stylized.{format}")
