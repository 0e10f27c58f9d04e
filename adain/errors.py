"""Errors that every tool reports on one line, importable without torch."""

from __future__ import annotations

import os


class ImageError(ValueError):
    """An image could not be read or written; ``str()`` is one line naming the file."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
