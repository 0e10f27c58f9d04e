"""Pack a folder tree of images into webdataset tar shards for ``train.py``.

    python scripts/make_shards.py /data/coco/train2014 /data/shards/coco --workers 8

writes ``/data/shards/coco-000000.tar, coco-000001.tar, …`` and the index
``/data/shards/coco.json`` (shard names, sample counts, the brace pattern to pass to
``train.py``, a fingerprint of the files packed). Each image is oriented (EXIF) and resized so its shorter side is ``--short-side``
(never upscaled unless ``--upscale``). An image that needs no change (an RGB JPEG, PNG or WebP
no larger, without EXIF rotation) keeps its own bytes, so small WebP files stay small and
nothing is compressed twice; the others are re-encoded as JPEG. A sample is
``{"__key__": "000000042", "jpg" (or "png", "webp"): …, "json": {"source": relative path, "width", "height"}}``.
``--exclude LIST`` leaves out the files named in LIST (paths relative to the input folder, one
per line), e.g. a validation split written by ``scripts/train_from_folders.py``.

Unreadable files (corrupt, truncated, empty, not an image) are reported, counted and
skipped. Every shard and the index are written to a temporary file and renamed, so a
re-run replaces old shards atomically and an interrupted run leaves no partial tar.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import webdataset as wds
from PIL import Image

from adain.core.atomicfile import atomic_path, temp_beside
from adain.core.commandline import run_main
from adain.core.errors import ImageError
from adain.core.options import IMAGE_EXTENSIONS
from adain.media.image_io import MAX_INPUT_PIXELS, check_min_side, encode_image, open_image, prepare_image

SHARD_DIGITS = 6
KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}  # stored unchanged when no resize or rotation is needed
EXIF_ORIENTATION = 0x0112


@dataclass
class Encoded:
    """One image, re-encoded for a shard, or the reason it was skipped."""

    source: str
    data: bytes = b""
    ext: str = "jpg"  # the sample's field for the image: its format
    width: int = 0
    height: int = 0
    error: str = ""


@dataclass
class Summary:
    """What a run wrote and skipped; also the JSON index."""

    pattern: str = ""
    shards: list[dict[str, object]] = field(default_factory=list)
    samples: int = 0
    skipped: list[str] = field(default_factory=list)
    ignored: int = 0
    excluded: int = 0  # files left out by --exclude
    fingerprint: str = ""  # of the files packed, see fingerprint()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Pack a folder tree of images into webdataset tar shards.")
    p.add_argument("input_dir", type=Path, help="folder searched recursively for images")
    p.add_argument("output_prefix", type=Path, help="shards are written as PREFIX-000000.tar, … plus PREFIX.json")
    p.add_argument("--shard-size", type=int, default=1000, metavar="N", help="images per shard (default 1000)")
    p.add_argument("--short-side", type=int, default=512, metavar="PX", help="shorter side after resizing (default 512)")
    p.add_argument("--upscale", action="store_true", help="also enlarge images smaller than --short-side")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality 1–95 (default 90)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N", help="encoding processes (default: all cores)")
    p.add_argument("--exclude", type=Path, metavar="LIST", help="file of paths (relative to INPUT_DIR, one per line) to leave out")
    return p


def find_images(root: Path) -> tuple[list[Path], int]:
    """Image files under ``root`` (sorted, so shards are reproducible) and the count of other files."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    return images, len(files) - len(images)


def leave_out(paths: Sequence[Path], root: Path, excluded: set[str]) -> list[Path]:
    """``paths`` except those whose path relative to ``root`` is in ``excluded``."""
    return [p for p in paths if p.relative_to(root).as_posix() not in excluded]


def fingerprint(paths: Sequence[Path], root: Path) -> str:
    """A digest of the files to pack as they are now (paths relative to ``root``, sizes, modification
    times), recorded in the index: ``train_from_folders.py`` reuses shards only while it still matches."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read_list(path: Path) -> set[str]:
    """The relative paths listed in ``path``, one per line (blank lines ignored)."""
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def kept_field(path: Path) -> str | None:
    """The sample field under which ``path`` can be stored unchanged (an RGB JPEG, PNG or WebP
    with no EXIF rotation to apply), else None. Reads only the header."""
    with Image.open(path) as img:
        if img.mode == "RGB" and img.getexif().get(EXIF_ORIENTATION, 1) == 1:
            return KEPT_FORMATS.get(img.format or "")
    return None


def encode(path: Path, root: Path, short_side: int, upscale: bool, quality: int) -> Encoded:
    """Read (fully, so broken files are found), orient and resize one image, keeping its own bytes
    when nothing changed and JPEG-encoding it otherwise; never raises for a bad file."""
    source = path.relative_to(root).as_posix()
    try:
        img = open_image(path, short_side=short_side)
        check_min_side(img.width, img.height, path)  # too small to train on, kept bytes or not
        side = short_side if upscale or min(img.size) > short_side else 0
        if side == 0 and (ext := kept_field(path)):
            return Encoded(source, path.read_bytes(), ext, img.width, img.height)
        rgb = prepare_image(img, side, max_pixels=MAX_INPUT_PIXELS, name=path).rgb
    except ImageError as err:
        return Encoded(source, error=str(err))
    height, width = rgb.shape[-2:]
    return Encoded(source, encode_image(rgb, "JPEG", quality=quality), "jpg", width, height)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one image per process: parallelism comes from the pool


def encode_all(paths: Sequence[Path], root: Path, args: argparse.Namespace) -> Iterator[Encoded]:
    """Encoded images in input order, ``args.workers`` at a time."""
    work = partial(encode, root=root, short_side=args.short_side, upscale=args.upscale, quality=args.quality)
    if args.workers <= 1:
        yield from map(work, paths)
        return
    with Pool(args.workers, initializer=_init_worker) as pool:
        yield from pool.imap(work, paths, chunksize=8)


def shard_path(prefix: Path, index: int) -> Path:
    return prefix.parent / f"{prefix.name}-{index:0{SHARD_DIGITS}d}.tar"


class AtomicShardWriter:
    """Writes ``PREFIX-NNNNNN.tar`` shards of at most ``size`` samples; each is written to a
    temporary file and renamed into place only when complete."""

    def __init__(self, prefix: Path, size: int):
        self.prefix, self.size = prefix, size
        self.shards: list[dict[str, object]] = []
        self._stream, self._writer, self._tmp, self._count = None, None, None, 0

    def write(self, sample: dict[str, object]) -> None:
        if self._writer is None:
            self._tmp = temp_beside(shard_path(self.prefix, len(self.shards)))
            self._stream = open(self._tmp, "wb")
            self._writer = wds.TarWriter(self._stream, mtime=0)  # fixed mtime: reproducible tars
        self._writer.write(sample)
        self._count += 1
        if self._count == self.size:
            self.close()

    def close(self) -> None:
        """Finish the open shard, if any, and move it to its final name."""
        if self._writer is None:
            return
        self._writer.close()
        self._stream.close()
        final = shard_path(self.prefix, len(self.shards))
        os.replace(self._tmp, final)
        self.shards.append({"name": final.name, "samples": self._count})
        self._stream, self._writer, self._tmp, self._count = None, None, None, 0

    def abort(self) -> None:
        """Drop the open shard's temporary file (after an error or an interrupt)."""
        if self._writer is None:
            return
        try:
            self._writer.close()
        finally:
            self._stream.close()
            self._tmp.unlink(missing_ok=True)
            self._writer = None


def write_shards(images: Iterator[Encoded], prefix: Path, shard_size: int, summary: Summary) -> None:
    """Put every good image into shards; report and count the others."""
    writer = AtomicShardWriter(prefix, shard_size)
    try:
        for item in images:
            if item.error:
                summary.skipped.append(item.error)
                print(f"skipped {item.error}", file=sys.stderr)
                continue
            meta = {"source": item.source, "width": item.width, "height": item.height}
            writer.write({"__key__": f"{summary.samples:09d}", item.ext: item.data, "json": meta})
            summary.samples += 1
        writer.close()
    finally:
        writer.abort()
        summary.shards = writer.shards


def remove_stale_shards(prefix: Path, keep: int) -> None:
    """Delete ``PREFIX-NNNNNN.tar`` left by an earlier, larger run (index ≥ ``keep``)."""
    pattern = re.compile(rf"{re.escape(prefix.name)}-(\d{{{SHARD_DIGITS}}})\.tar")
    for path in prefix.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and int(match.group(1)) >= keep:
            path.unlink()


def write_index(prefix: Path, summary: Summary, args: argparse.Namespace) -> Path:
    last = len(summary.shards) - 1
    summary.pattern = f"{prefix.name}-{{{0:0{SHARD_DIGITS}d}..{last:0{SHARD_DIGITS}d}}}.tar" if last else summary.shards[0]["name"]
    index = {
        "pattern": summary.pattern,
        "samples": summary.samples,
        "shards": summary.shards,
        "skipped": len(summary.skipped),
        "excluded": summary.excluded,
        "fingerprint": summary.fingerprint,
        "skipped_files": summary.skipped,
        "source": str(args.input_dir.resolve()),
        "short_side": args.short_side,
        "upscale": args.upscale,
        "quality": args.quality,
    }
    path = prefix.parent / f"{prefix.name}.json"
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    return path


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not args.input_dir.is_dir():
        parser.error(f"{args.input_dir}: no such folder")
    if args.shard_size < 1 or args.short_side < 1 or args.workers < 1:
        parser.error("--shard-size, --short-side and --workers must be at least 1")
    if not 1 <= args.quality <= 95:
        parser.error("--quality must be in 1–95")
    if args.exclude is not None and not args.exclude.is_file():
        parser.error(f"{args.exclude}: no such list")
    if not args.output_prefix.name or args.output_prefix.name in (".", ".."):
        parser.error(f"{args.output_prefix}: the output prefix needs a file name part, e.g. shards/coco")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    prefix = args.output_prefix.resolve()
    found, ignored = find_images(args.input_dir)
    paths = leave_out(found, args.input_dir, read_list(args.exclude) if args.exclude else set())
    excluded_count = len(found) - len(paths)
    if not paths:
        why = f"all {len(found)} images are listed in {args.exclude}" if found else f"no images ({', '.join(IMAGE_EXTENSIONS)}) found"
        print(f"error: {args.input_dir}: {why}", file=sys.stderr)
        return 1
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: {prefix.parent}: cannot create ({err.strerror or err})", file=sys.stderr)
        return 1
    summary = Summary(ignored=ignored, excluded=excluded_count, fingerprint=fingerprint(paths, args.input_dir))
    try:
        write_shards(encode_all(paths, args.input_dir, args), prefix, args.shard_size, summary)
    except OSError as err:  # disk full, permissions: shards finished so far stay whole
        print(f"error: cannot write shards at {prefix} ({err.strerror or err})", file=sys.stderr)
        return 1
    if not summary.shards:
        print(f"error: none of the {len(paths)} image files in {args.input_dir} could be read", file=sys.stderr)
        return 1
    index = write_index(prefix, summary, args)
    remove_stale_shards(prefix, len(summary.shards))
    other = f", ignored {ignored} non-image file{'s' * (ignored != 1)}" if ignored else ""
    other += f", left out {excluded_count} listed in {args.exclude}" if args.exclude else ""
    print(
        f"wrote {summary.samples} image{'s' * (summary.samples != 1)} in {len(summary.shards)} "
        f"shard{'s' * (len(summary.shards) != 1)} {prefix.parent / summary.pattern} "
        f"(skipped {len(summary.skipped)} unreadable{other}); index {index}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
