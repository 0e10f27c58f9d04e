"""Stylizing for the web: one model call at a time, a bounded queue, and cached style codes.

Requests share one :class:`~adain.model.style_transfer.StyleTransfer`. Model calls (and the image decoding
that feeds them) run one at a time, in arrival order, in a worker thread, so memory stays
bounded however many requests come in; past ``max_queue`` waiting requests, new ones are refused
at once (:class:`QueueFull`) rather than piling up. A style is encoded once per (image bytes,
style size, crop): later requests with the same painting reuse its code (:class:`~adain.jobs.image.StyleCodes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from starlette.concurrency import run_in_threadpool

from adain.core.allocator import release_freed_memory
from adain.core.options import VIDEO_OUTPUTS, VIDEO_SMOOTHING
from adain.jobs.image import StyleCodes, stylize
from adain.jobs.request import Request
from adain.jobs.video import stylize_video
from adain.media.image_io import encode_image
from adain.model.style_transfer import StyleTransfer

from .limits import Limits

T = TypeVar("T")
MAX_STYLES = 4
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
VIDEO_FORMATS = tuple(extension[1:] for extension in VIDEO_OUTPUTS)  # mp4, webm


@dataclass(frozen=True)
class Job(Request):
    """One web request: a :class:`~adain.jobs.request.Request` (checked as everywhere) and its output
    format, with the app's own limit on the number of styles."""

    format: str = "png"
    formats: ClassVar[tuple[str, ...]] = tuple(FORMATS)  # what ``format`` may be

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.styles) > MAX_STYLES:
            raise ValueError(f"give 1 to {MAX_STYLES} styles, got {len(self.styles)}")
        if self.format not in self.formats:
            raise ValueError(f"format must be one of {', '.join(self.formats)}, got {self.format!r}")


@dataclass(frozen=True)
class VideoJob(Job):
    """A clip to stylize (the content is a video file): a :class:`Job` with a video format and
    the temporal smoothing of :func:`adain.jobs.video.stylize_video`."""

    format: str = "mp4"
    smoothing: float = VIDEO_SMOOTHING
    formats: ClassVar[tuple[str, ...]] = VIDEO_FORMATS

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing:g}")


@dataclass(frozen=True)
class Rendered:
    """A stylized image or clip file and facts about it (``frames``: 1 for an image)."""

    data: bytes
    media_type: str
    width: int
    height: int
    seconds: float
    frames: int = 1


class QueueFull(RuntimeError):
    """Too many requests are already waiting; the client should retry in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class ClientGone(RuntimeError):
    """The client disconnected while its request waited, so it was not rendered."""


async def to_the_end(work: Awaitable[T]) -> T:
    """``work``'s result; if the caller is cancelled meanwhile (an ASGI server may cancel a request
    whose client has gone), the cancellation goes on only once ``work`` has ended: a render in a
    thread cannot be stopped, so until then the model is still in use."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


class Stylist:
    """Renders :class:`Job` s with one model, serialised, caching encoded styles (LRU)."""

    def __init__(self, model: StyleTransfer, limits: Limits = Limits()):
        self.model = model
        self.limits = limits
        self.codes = StyleCodes(limits.style_cache)
        self.turn = asyncio.Lock()  # held while a request uses the model; FIFO, so arrival order
        self.pending = 0  # requests waiting for or holding the model
        self.render_seconds: float | None = None  # recent renders' mean (exponential, weight 0.2 for the latest)
        self._release: asyncio.TimerHandle | None = None  # the pending give-back of memory, once idle

    async def submit(self, job: Job, disconnected: Callable[[], Awaitable[bool]]) -> Rendered:
        """Queue ``job``; render it when its turn comes unless the client has gone by then."""
        if self.pending >= self.limits.max_queue:
            retry_after = self.retry_after()
            raise QueueFull(f"the server is busy ({self.pending} requests queued); try again in {retry_after} s", retry_after)
        if self._release is not None:
            self._release.cancel()
        self.pending += 1
        try:
            async with self.turn:
                if await disconnected():
                    raise ClientGone("the client closed the request before its turn")
                rendered = await to_the_end(run_in_threadpool(self.render, job))
        finally:
            self.pending -= 1
            if self.pending == 0:
                loop = asyncio.get_running_loop()
                self._release = loop.call_later(self.limits.release_after_idle_s, self._release_if_idle, loop)
        latest = rendered.seconds
        self.render_seconds = latest if self.render_seconds is None else 0.8 * self.render_seconds + 0.2 * latest
        return rendered

    def _release_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the allocator's kept memory back if no request came meanwhile (off the event loop)."""
        if self.pending == 0:
            loop.run_in_executor(None, release_freed_memory)

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely to be free: one render, as recently measured."""
        return max(1, math.ceil(self.render_seconds or 1.0))

    def render(self, job: Job) -> Rendered:
        """Stylize ``job`` now, in this thread (callers serialise: see :meth:`submit`)."""
        try:
            return self._render(job)
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give the next, perhaps smaller, request a clean slate
            raise

    def _render(self, job: Job) -> Rendered:
        if isinstance(job, VideoJob):
            return self._render_video(job)
        start = time.perf_counter()
        out = stylize(self.model, job, self.codes, self.limits.max_input_pixels, self.limits.max_work_pixels)
        fmt, media_type = FORMATS[job.format]
        data = encode_image(out.rgb, fmt, out.alpha)
        return Rendered(data, media_type, out.rgb.shape[-1], out.rgb.shape[-2], time.perf_counter() - start)

    def _render_video(self, job: VideoJob) -> Rendered:
        """The clip, through the command line's video path, into a temporary file read back whole
        (at most ``max_video_frames`` frames of at most ``max_work_pixels``, so a bounded answer)."""
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / f"stylized.{job.format}"
            limits = self.limits
            done = stylize_video(self.model, job, output, self.codes, None, job.smoothing, None,
                                 limits.max_input_pixels, limits.max_work_pixels, limits.max_video_frames)  # fmt: skip
            data = output.read_bytes()
        return Rendered(data, f"video/{job.format}", *done.size, time.perf_counter() - start, done.frames)
