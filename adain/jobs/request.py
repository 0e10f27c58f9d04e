"""What to stylize and how: the one request type of the command line, the app and the benchmark.

A :class:`Request` names the images (files or uploaded bytes) and every option of ``infer.py``;
it is checked once, on construction, by the same functions (:mod:`adain.core.checks`) that check the
Python API's arguments, so every path refuses the same things with the same one-line messages. Torch-free,
so the command line can check a request before it loads a model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from adain.core.checks import DEFAULT_MAX_TILE, check_sizes, check_stylize


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
    max_tile: int = DEFAULT_MAX_TILE  # over max_tile² pixels, stylize in tiles of at most this side (0: never)
    look_size: int = 0  # stylize at this shorter side, then upsample guided by the content (0: off)

    def __post_init__(self) -> None:
        method = check_stylize(
            self.alpha, len(self.styles), self.style_weights, self.mask is not None, self.preserve_color, self.max_tile,
            self.look_size,
        )  # fmt: skip
        check_sizes(content_size=self.content_size, style_size=self.style_size)
        object.__setattr__(self, "preserve_color", method)  # True → "coral": the method name from here on
