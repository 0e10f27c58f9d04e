"""Atomic file writes: write to a temporary file beside the target, rename it into place when done.

A failed or interrupted write (an error, Ctrl-C, SIGKILL) never leaves a partial file under the
final name, and an earlier file of that name stays intact until the new one is complete. Images,
decoder files, checkpoints, shards and reports are all written this way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_beside(path: Path) -> Path:
    """A new, empty temporary file in ``path``'s folder (same filesystem, so ``os.replace`` is
    atomic), readable by all like a normal file (``mkstemp``'s 0600 would make it private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_path(p) as tmp:`` write ``tmp``; it becomes ``p`` (mode 0644) when the block
    ends without an error, and is removed otherwise."""
    tmp = temp_beside(Path(path))
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # again: a writer may have replaced the file (safetensors' save_file does)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
