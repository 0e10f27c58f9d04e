"""What to stylise and how: the one request type of the command line, the app and the benchmark.

A :class:`Request` names the images (files or uploaded bytes) and every option of ``infer.py``;
it is checked once, on construction, by the same functions that check the Python API's
arguments, so every path refuses the same things with the same one-line messages. Torch-free,
so the command line can check a request before it loads a model.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .options import MIN_SIDE, PRESERVE_COLOR, normalise_weights


def real_path(path: str | os.PathLike) -> Path:
    """``path`` made absolute with its symbolic links followed as far as they lead: what tells that
    two names are one file. Unlike ``Path.resolve``, never raises (a link loop ends the walk), so a
    bad path is reported where it is read, on its own line."""
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class ImageSource:
    """An image file, as its path or its bytes (an upload, a bundled example), and what messages
    call it. A request's bytes are never used as a path."""

    data: bytes | Path
    label: str

    @classmethod
    def file(cls, path: str | os.PathLike) -> "ImageSource":
        """A file on disk, called by its path."""
        return cls(Path(path), str(path))

    @property
    def key(self) -> str:
        """Identifies the image for caching its style code: the file's path, size and modification time
        (a file replaced by another picture is another image), or the bytes' SHA-256."""
        if isinstance(self.data, Path):
            path = real_path(self.data)
            try:
                stat = path.stat()
            except OSError:  # reported where the file is read
                return f"file:{path}"
            return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"
        return f"sha256:{hashlib.sha256(self.data).hexdigest()}"


def check_alpha(alpha: float) -> None:
    """ValueError unless the style strength is a number in [0, 1]."""
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def check_styles(count: int, style_weights: Sequence[float] | None, masked: bool) -> None:
    """ValueError unless the weights fit the styles and a mask has exactly two styles, unweighted."""
    if count < 1:
        raise ValueError("give at least one style")
    if style_weights is not None:
        normalise_weights(style_weights, count)  # raises on a wrong count, sign or a non-finite weight
    if masked and (count != 2 or style_weights is not None):
        raise ValueError(f"a mask needs exactly two styles and no style weights, got {count} styles")


def check_preserve_color(method: bool | str | None) -> str | None:
    """A ``preserve_color`` argument as a method name: False/None → None, True → ``"coral"``."""
    if method is False or method is None:
        return None
    if method is True:
        return "coral"
    if method not in PRESERVE_COLOR:
        raise ValueError(f"unknown colour preservation method {method!r}; choose from {PRESERVE_COLOR}")
    return method


MIN_TILE = 64  # px: smaller tiles would spend most of their work on the margin (transfer.TILE_HALO)
MAX_TILE = 4000  # px: with its margins, about the most processed in one piece (imageio.MAX_WORK_PIXELS)
DEFAULT_MAX_TILE = 1024  # px: images of more than its square are stylised in tiles of at most this side


def check_max_tile(max_tile: int) -> None:
    """ValueError unless ``max_tile`` is 0 (never tile) or a multiple of 8 from ``MIN_TILE`` to ``MAX_TILE``."""
    if max_tile != 0 and not (MIN_TILE <= max_tile <= MAX_TILE and max_tile % 8 == 0):
        raise ValueError(f"max_tile must be 0 (never tile) or a multiple of 8 from {MIN_TILE} to {MAX_TILE}, got {max_tile}")


def check_sizes(**sizes: int) -> None:
    """ValueError unless every size (a shorter side in px) is 0 (off, or the image's own) or at least
    ``MIN_SIDE``, the smallest image read."""
    for name, size in sizes.items():
        if size < 0:
            raise ValueError(f"{name} must be >= 0, got {size}")
        if 0 < size < MIN_SIDE:
            raise ValueError(f"{name} must be 0 or at least {MIN_SIDE} px, got {size}")


@dataclass(frozen=True)
class Request:
    """One output: a content image, its styles, and how to combine them (the options of ``infer.py``)."""

    content: ImageSource
    styles: tuple[ImageSource, ...]
    style_weights: tuple[float, ...] | None = None
    mask: ImageSource | None = None
    alpha: float = 1.0
    preserve_color: str | None = None
    content_size: int = 512  # shorter side in px; 0 keeps the image's
    style_size: int = 512
    crop: bool = False  # centre-crop content, mask and styles to squares
    max_tile: int = DEFAULT_MAX_TILE  # over max_tile² pixels, stylise in tiles of at most this side (0: never)
    look_size: int = 0  # stylise at this shorter side, then upsample guided by the content (0: off)

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_styles(len(self.styles), self.style_weights, self.mask is not None)
        check_preserve_color(self.preserve_color)
        check_max_tile(self.max_tile)
        check_sizes(content_size=self.content_size, style_size=self.style_size, look_size=self.look_size)
