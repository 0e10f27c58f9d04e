"""What one app server accepts; torch-free, so ``python -m adain.app --help`` answers at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one server accepts (``--max-upload-mb``, ``--max-pixels``, ``--max-queue`` and ``--max-video-frames`` set four)."""

    max_request_bytes: int = 25 * 2**20  # one request's whole body (all uploads together)
    max_input_pixels: int = 40_000_000  # an uploaded image, before resizing (decoded, so checked first)
    # An image after resizing to content_size/style_size. One megapixel keeps the largest request
    # at about 13 s and 1.5 GB on a 2-core CPU (docs/app.md, "Limits"); the page then offers sizes up to
    # 768 px. A GPU server raises it with --max-pixels.
    max_work_pixels: int = 1024 * 1024
    max_queue: int = 8  # requests waiting for or in the model; more are refused with 503
    # A clip's frames (/api/stylize-video): 10 s at 25 fps. Frames are stylized a batch at a time,
    # so memory does not grow with the clip, but the clip holds the model for all its frames (on
    # a 2-core CPU, seconds each: docs/video.md), while the queue waits. A GPU server raises it.
    max_video_frames: int = 250
    style_cache: int = 64  # encoded styles kept (each is 2×512 floats)
    # After this long without requests the server gives back the memory its allocator keeps for
    # speed (adain.core.allocator): a burst stays fast, an idle server stays small.
    release_after_idle_s: float = 10.0
