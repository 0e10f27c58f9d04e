"""Errors that every tool reports on one line, and how any exception becomes one line;
importable without torch."""

from __future__ import annotations

import os


class ImageError(ValueError):
    """An image could not be read or written; ``str()`` is one line naming the file."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")


class UsageError(ValueError):
    """A setting that can never work, such as a training setting that can never train: one line, exit 2."""


def one_line(err: BaseException, last: bool = False) -> str:
    """An exception as one line: its first non-blank line, or with ``last`` its last one
    (a data-loader worker's or a library's wrapped error ends with the real reason)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1] if last else lines[0]
