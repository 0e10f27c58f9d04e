"""What the comparison tools read: image folders, content/style pairs, and the decoder to report.

Shared by ``scripts/benchmark.py`` and ``scripts/evaluate.py`` so that both list folders, leave
out unreadable images and pair contents with styles the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from adain.core.errors import ImageError, one_line
from adain.core.options import IMAGE_EXTENSIONS
from adain.media.image_io import check_min_side, open_image
from adain.model.decoder import Decoder
from adain.model.decoder_file import read_metadata

RANDOM = "random"  # --decoder value: an untrained, seeded decoder (unless a file has that name)


def image_files(path: Path) -> list[Path]:
    """``path`` itself, or the images in the folder ``path`` (sorted); ValueError if there are none."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not found:
        raise ValueError(f"{path}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
    return found


def readable(paths: list[Path], kind: str) -> tuple[list[Path], list[str]]:
    """The images that open and are large enough to be read (what :func:`adain.media.image_io.load_image`
    refuses at any size), and a one-line reason for each of the others; ValueError if none is left."""
    good, bad = [], []
    for path in paths:
        try:
            check_min_side(*open_image(path).size, path)
        except ImageError as err:
            bad.append(one_line(err))
        else:
            good.append(path)
    if not good:
        raise ValueError(f"no readable {kind} image: {bad[0]}")
    return good, bad


def say_left_out(skipped: list[str]) -> None:
    """Name each unreadable image that :func:`readable` left out, one line each, before the work."""
    for reason in skipped:
        print(f"error: {reason} (left out)", file=sys.stderr)


def finish(table: str, written: Sequence[Path], skipped: list[str], done: str) -> int:
    """A report's end: its ``table`` on stdout, the files ``written`` on stderr, and the exit status:
    0, or 1 after a summary line when unreadable images were left out (the rest were ``done``)."""
    print(table)
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if not skipped:
        return 0
    count = len(skipped)
    print(f"{count} unreadable image{'s' * (count != 1)} left out, the rest {done}", file=sys.stderr)
    return 1


def cycled_pairs(contents: list[Path], styles: list[Path], count: int) -> list[tuple[Path, Path]]:
    """Pair i is content i and style i, each list cycled: folders of different sizes still give varied pairs."""
    return [(contents[i % len(contents)], styles[i % len(styles)]) for i in range(count)]


def is_random(decoder: str | None) -> bool:
    """Whether ``--decoder`` asks for :func:`random_decoder` (a file called "random" wins)."""
    return decoder == RANDOM and not Path(RANDOM).exists()


def random_decoder() -> Decoder:
    """An untrained decoder with seeded weights, so that runs repeat."""
    torch.manual_seed(0)
    return Decoder()


def decoder_note(path: Path) -> str:
    """What the decoder file says about its training (our safetensors files), for the report;
    the whole training configuration stays in the file (``config``)."""
    if path.suffix != ".safetensors":
        return path.suffix
    meta = read_metadata(path)
    facts = {k: v for k, v in meta.items() if k not in ("format", "arch", "encoder", "config")}
    return ", ".join(f"{k}={v}" for k, v in facts.items()) or "no training facts recorded"
