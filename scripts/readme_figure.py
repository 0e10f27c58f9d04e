"""The README's picture: a photo | a painting | the decoder's result, side by side at one height.

    python scripts/readme_figure.py --out docs/images/demo.jpg [--decoder FILE]

Run it again after a new decoder ships, so that the front page shows what the package does today.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from adain.core.commandline import failed, report_file, run_main
from adain.core.options import add_model_options, model_options
from adain.media.image_io import load_image, resize, save_image
from adain.model.style_transfer import StyleTransfer

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content", type=Path, default=ROOT / "examples/content/chelsea.jpg", help="default: the demo's photo")
    p.add_argument("--style", type=Path, default=ROOT / "examples/style/van_gogh_starry_night.jpg", help="default: the demo's painting")
    p.add_argument("--size", type=int, default=512, help="shorter side the photo is stylized at (default 512)")
    p.add_argument("--height", type=int, default=320, help="height of each panel in the figure (default 320)")
    p.add_argument("--out", type=report_file, required=True, help="the figure (JPEG or PNG)")
    add_model_options(p, "decoder file (default: the bundled one)")
    return p


def panels(model: StyleTransfer, content: Path, style: Path, size: int, height: int) -> torch.Tensor:
    """Photo, painting and result, each resized to ``height``, joined left to right (1×3×height×W)."""
    photo = load_image(content, size).rgb
    painting = load_image(style, size).rgb
    with torch.no_grad():
        result = model.stylize(photo, painting).clamp(0, 1)
    scaled = [resize(image, (height, round(image.shape[-1] * height / image.shape[-2]))) for image in (photo, painting, result)]
    gap = torch.ones(1, 3, height, 8)
    return torch.cat([scaled[0], gap, scaled[1], gap, scaled[2]], dim=-1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size < 16 or args.height < 16:
        parser.error("--size and --height must be at least 16")
    try:
        model = StyleTransfer.load(**model_options(args))
        save_image(panels(model, args.content, args.style, args.size, args.height), args.out)
    except (OSError, ValueError) as err:
        return failed(err)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
