"""Stylizing a clip: the one video path of the command line and the Python API.

A :class:`~adain.jobs.request.Request` whose content is a video file is stylized frame by frame, in
batches, through :meth:`StyleTransfer.stylize` with every option an image has (α, weighted
styles, mask, colour preservation, sizes, tiles, look size); the styles are encoded once. Frames
stream from the reader to the writer, so memory does not grow with the clip's length, and the
audio is carried over (:mod:`adain.media.video_io`). ``smoothing`` keeps the last output where the
input is still (:mod:`adain.jobs.flicker`), which lowers flicker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
from torch import Tensor

from adain.core.options import VIDEO_BATCH, VIDEO_SMOOTHING
from adain.jobs.flicker import Stabiliser
from adain.jobs.image import StyleCodes, limits, mask_for, styles_for
from adain.jobs.request import Request
from adain.media.image_io import MAX_INPUT_PIXELS, check_work_size
from adain.media.video_io import ClipInfo, ClipReader, ClipWriter, VideoError, check_frame_count, frame_size, probe
from adain.model.style_transfer import StyleCode, StyleTransfer


@dataclass(frozen=True)
class VideoResult:
    """What was written: frame count, size (width, height), frame rate, seconds taken."""

    frames: int
    size: tuple[int, int]
    rate: Fraction
    seconds: float

    @property
    def fps(self) -> float:
        """Frames stylized per second."""
        return self.frames / max(self.seconds, 1e-9)


def default_batch(device: torch.device) -> int:
    """Frames per forward pass on ``device``: one on the CPU (batches are no faster there, only
    larger), a few on a GPU (:data:`~adain.core.options.VIDEO_BATCH`)."""
    return VIDEO_BATCH["cpu" if device.type == "cpu" else "gpu"]


def check_video(request: Request, max_input: int = MAX_INPUT_PIXELS) -> ClipInfo:
    """The request's clip, checked (:func:`~adain.media.video_io.probe`: frames of at most ``max_input``
    pixels among the rest), before any model work."""
    if not isinstance(request.content.data, Path):
        raise VideoError(request.content.label, "a video must be a file")
    if request.crop:
        raise VideoError(request.content.label, "--crop is for images; a video keeps its frame")
    return probe(request.content.data, max_input)


def stylize_video(
    model: StyleTransfer,
    request: Request,
    output: str | Path,
    codes: StyleCodes | None = None,
    batch_size: int | None = None,
    smoothing: float = VIDEO_SMOOTHING,
    progress: Callable[[int, int | None], None] | None = None,
    max_input: int = MAX_INPUT_PIXELS,
    max_work: int | None = None,
    max_frames: int | None = None,
) -> VideoResult:
    """Stylize the clip ``request.content`` into ``output`` (.mp4: H.264 + AAC, .webm: VP9 + Opus):
    the same frame rate, frame count and audio, the frames at ``request.content_size`` (0: as
    they are; sides made even). ``progress(done, total)`` is called once the clip is checked and
    after every batch: frames written so far, and the count the clip states (None if it states none).
    ``batch_size``: frames per forward pass (None: :func:`default_batch` for the model's device).
    ``smoothing`` in [0, 1): how much of the last output is kept where the input is still (0: none).
    ``max_input``: the most pixels a frame, mask or style may have as stored (a clip is refused
    from its header, before a frame is decoded). ``max_frames`` (a server's limit; None: any
    length) refuses a longer clip, before any work when the clip states its length. Any problem
    is one :class:`~adain.core.errors.ImageError` naming the file; nothing is left at ``output``.
    """
    batch_size = default_batch(model.device) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stabilise = Stabiliser(smoothing)
    info, size, mask, styles = _checked_job(model, request, codes, max_input, max_work, max_frames)
    if progress is not None:
        progress(0, info.frames)
    start = time.perf_counter()
    reader = ClipReader(request.content.data, info, size, max_frames)
    batch: list[Tensor] = []

    def flush(writer: ClipWriter) -> None:
        frames = torch.cat(batch)
        batch.clear()
        out = model.render(frames, styles, request.alpha, request.style_weights, mask, request.preserve_color,
                           request.max_tile, request.look_size)  # fmt: skip
        writer.write(stabilise(frames.to(out.device), out))
        if progress is not None:
            progress(writer.frames, info.frames)

    with ClipWriter(output, request.content.data, info, size) as writer:
        for item in reader:  # frames at the working size, and the audio packets to copy
            if isinstance(item, Tensor):
                batch.append(item)
                if len(batch) == batch_size:
                    flush(writer)
            else:
                writer.mux(item)
        if batch:
            flush(writer)
    return VideoResult(writer.frames, size, info.rate, time.perf_counter() - start)


def _checked_job(
    model: StyleTransfer, request: Request, codes: StyleCodes | None, max_input: int, max_work: int | None, max_frames: int | None
) -> tuple[ClipInfo, tuple[int, int], Tensor | None, list[StyleCode] | list[Tensor]]:
    """Everything checked before a frame is decoded: the clip's facts, the frame size (width,
    height), the mask at that size and the styles' codes."""
    info = check_video(request, max_input)
    label = request.content.label
    check_frame_count(label, info.frames, max_frames)
    size = frame_size(info, request.content_size, label)
    limit, whole = limits(request, max_work)
    check_work_size(*size, limit, label)
    mask = mask_for(request, size[::-1], min(size), False, max_input, limit)
    return info, size, mask, styles_for(model, request, codes, max_input, whole)
