"""Stylising for the web: one model call at a time, a bounded queue, and cached style codes.

Requests share one :class:`~adain.transfer.StyleTransfer`. Model calls (and the image decoding
that feeds them) run one at a time, in arrival order, in a worker thread, so memory stays
bounded however many requests come in; past ``max_queue`` waiting requests, new ones are refused
at once (:class:`QueueFull`) rather than piling up. A style is encoded once per (image bytes,
style size, crop): later requests with the same painting reuse its :class:`StyleCode`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import torch
from starlette.concurrency import run_in_threadpool

from adain import color
from adain.allocator import release_freed_memory
from adain.functional import mask_from_rgb
from adain.imageio import LoadedImage, encode_image, open_image, prepare_image
from adain.options import normalise_weights
from adain.transfer import StyleCode, StyleTransfer

from .limits import Limits

MAX_STYLES = 4
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


@dataclass(frozen=True)
class ImageSource:
    """An image file's bytes (an upload or a bundled example) and what messages call it.

    Never a path: nothing a request sends is used to touch the disk.
    """

    data: bytes
    label: str


@dataclass(frozen=True)
class Job:
    """One stylising request, with the options of ``infer.py``; checked on construction."""

    content: ImageSource
    styles: tuple[ImageSource, ...]
    alpha: float = 1.0
    style_weights: tuple[float, ...] | None = None
    preserve_color: str | None = None
    mask: ImageSource | None = None
    content_size: int = 512
    style_size: int = 512
    crop: bool = False
    format: str = "png"

    def __post_init__(self) -> None:
        if not 1 <= len(self.styles) <= MAX_STYLES:
            raise ValueError(f"give 1 to {MAX_STYLES} styles, got {len(self.styles)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.content_size < 0 or self.style_size < 0:
            raise ValueError("content_size and style_size must be >= 0")
        if self.style_weights is not None:
            normalise_weights(self.style_weights, len(self.styles))  # raises on a wrong count or sign
        if self.mask is not None and (len(self.styles) != 2 or self.style_weights is not None):
            raise ValueError("a mask needs exactly two styles and no style weights")
        color.check_method(self.preserve_color or False)
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")


@dataclass(frozen=True)
class Rendered:
    """A stylised image file and facts about it."""

    data: bytes
    media_type: str
    width: int
    height: int
    seconds: float


class QueueFull(RuntimeError):
    """Too many requests are already waiting; the client should retry in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class ClientGone(RuntimeError):
    """The client disconnected while its request waited, so it was not rendered."""


class Stylist:
    """Renders :class:`Job` s with one model, serialised, caching encoded styles (LRU)."""

    def __init__(self, model: StyleTransfer, limits: Limits = Limits()):
        self.model = model
        self.limits = limits
        self._codes: OrderedDict[str, StyleCode] = OrderedDict()
        self.turn = asyncio.Lock()  # held while a request uses the model; FIFO, so arrival order
        self.pending = 0  # requests waiting for or holding the model
        self.cache_hits = 0
        self.cache_misses = 0
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
                rendered = await run_in_threadpool(self.render, job)
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
        """Stylise ``job`` now, in this thread (callers serialise: see :meth:`submit`)."""
        try:
            return self._render(job)
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give the next, perhaps smaller, request a clean slate
            raise

    def _render(self, job: Job) -> Rendered:
        start = time.perf_counter()
        content = self._load(job.content, job.content_size, job.crop)
        mask = None if job.mask is None else mask_from_rgb(self._load(job.mask, job.content_size, job.crop).rgb)
        if job.preserve_color:  # the style is recoloured per content, so there is no reusable code
            styles = [self._load(s, job.style_size, job.crop).rgb for s in job.styles]
            out = self.model.stylize(content.rgb, styles, job.alpha, job.style_weights, mask, job.preserve_color)
        else:
            codes = [self.style_code(s, job.style_size, job.crop) for s in job.styles]
            out = self.model(content.rgb, codes, job.style_weights, mask, job.alpha)
        fmt, media_type = FORMATS[job.format]
        data = encode_image(out, fmt, content.alpha)
        return Rendered(data, media_type, out.shape[-1], out.shape[-2], time.perf_counter() - start)

    def style_code(self, style: ImageSource, size: int, crop: bool) -> StyleCode:
        """The style's code, from the cache or encoded now (and cached, evicting the oldest)."""
        key = f"{hashlib.sha256(style.data).hexdigest()}/{size}/{crop}"
        code = self._codes.get(key)
        if code is not None:
            self.cache_hits += 1
            self._codes.move_to_end(key)
            return code
        self.cache_misses += 1
        code = self.model.encode_style(self._load(style, size, crop).rgb)
        self._codes[key] = code
        if len(self._codes) > self.limits.style_cache:
            self._codes.popitem(last=False)
        return code

    @property
    def cached_styles(self) -> int:
        """How many encoded styles the cache holds."""
        return len(self._codes)

    def _load(self, source: ImageSource, short_side: int, crop: bool) -> LoadedImage:
        image = open_image(source.data, source.label, self.limits.max_input_pixels, short_side)
        return prepare_image(image, short_side, crop, self.limits.max_work_pixels, source.label)
