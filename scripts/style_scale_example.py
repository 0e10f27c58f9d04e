"""The style-scale figure: a crop of a 4K stylization as it is, with ``--look-size``, and the small result enlarged.

    python scripts/style_scale_example.py --decoder checkpoints/decoder.safetensors --out docs/style-scale.jpg

Stylizes ``--content`` (default: ``examples/large/dandelions_4k.jpg``, 3840×2160) at its own size
through the one path (:func:`adain.jobs.image.stylize`, so tiled as ``infer.py`` tiles it) twice: as
it is, and with ``--look-size``; and once at the look size. Writes one image, the panels left to
right: the photo reduced to the crop's height with the crop marked in red; the ``--crop`` square
of the full-size result; the same square with ``--look-size``; the same square of the small result,
enlarged to full size (bicubic). Every crop is shown pixel for pixel.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adain.core.commandline import failed, finite_float, report_file, run_main  # noqa: E402
from adain.core.errors import UsageError  # noqa: E402
from adain.core.options import MIN_SIDE, OUTPUT_FORMATS, add_model_options, model_options  # noqa: E402

GAP = 8  # px of white between the panels
MARK = (1.0, 0.0, 0.0)  # the crop's outline on the photo: red
MARK_WIDTH = 3  # px


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content", type=Path, default=ROOT / "examples/large/dandelions_4k.jpg", metavar="IMG",
                   help="the photo, stylized at its own size (default: examples/large/dandelions_4k.jpg)")  # fmt: skip
    p.add_argument("--style", type=Path, default=ROOT / "examples/style/van_gogh_starry_night.jpg", metavar="IMG",
                   help="the painting (default: examples/style/van_gogh_starry_night.jpg)")  # fmt: skip
    p.add_argument("--style-size", type=int, default=512, metavar="PX", help="the painting's shorter side (default 512)")
    p.add_argument("--look-size", type=int, default=512, metavar="PX", help="as infer.py's --look-size (default 512)")
    p.add_argument("--crop", type=int, default=640, metavar="PX",
                   help="side of the square shown, in the photo's pixels (default 640)")  # fmt: skip
    p.add_argument("--at", type=finite_float, nargs=2, default=(0.3, 0.35), metavar=("X", "Y"),
                   help="the square's centre as fractions of width and height (default 0.3 0.35: the big dandelion)")  # fmt: skip
    p.add_argument("--out", type=report_file, required=True, metavar="FILE", help="the figure (.jpg, .png or .webp)")
    add_model_options(p, "decoder file (default: the bundled one)")
    return p


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Impossible values: exit 2 with the usage, before any model is loaded."""
    for flag, value in (("--style-size", args.style_size), ("--look-size", args.look_size), ("--crop", args.crop)):
        if value < MIN_SIDE:
            parser.error(f"{flag} must be at least {MIN_SIDE}")
    if not all(0 <= f <= 1 for f in args.at):
        parser.error("--at takes fractions in [0, 1]")
    if args.out.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--out {args.out}: use one of {', '.join(sorted(OUTPUT_FORMATS))}")


def crop_box(width: int, height: int, side: int, at: tuple[float, float]) -> tuple[int, int]:
    """The top-left corner of the ``side`` square centred at ``at`` (fractions), moved inside the image;
    UsageError if the square is larger than the image."""
    if side > min(width, height):
        raise UsageError(f"--crop {side} is larger than the photo ({width}×{height})")
    x, y = round(at[0] * width - side / 2), round(at[1] * height - side / 2)
    return min(max(x, 0), width - side), min(max(y, 0), height - side)


def figure(args: argparse.Namespace) -> str:
    """Stylize, cut the panels and write the figure; what was written, in one line."""
    import torch
    import torch.nn.functional as F

    from adain.jobs.image import StyleCodes, stylize
    from adain.jobs.request import ImageSource, Request
    from adain.media.image_io import load_image, resize, save_image
    from adain.model.style_transfer import StyleTransfer

    photo = load_image(args.content).rgb
    height, width = photo.shape[-2:]
    x, y = crop_box(width, height, args.crop, args.at)
    st = StyleTransfer.load(**model_options(args))
    codes = StyleCodes()  # the painting is encoded once for the three results
    full = Request(ImageSource.file(args.content), (ImageSource.file(args.style),), content_size=0, style_size=args.style_size)
    small = stylize(st, replace(full, content_size=args.look_size), codes).rgb
    enlarged = F.interpolate(small, size=(height, width), mode="bicubic", align_corners=False)
    square = (slice(None), slice(None), slice(y, y + args.crop), slice(x, x + args.crop))
    crops = [
        stylize(st, full, codes).rgb[square], stylize(st, replace(full, look_size=args.look_size), codes).rgb[square],
        enlarged[square].clamp(0, 1),
    ]  # fmt: skip

    scale = args.crop / height  # the photo at the crop's height, with the crop outlined
    overview = resize(photo, (args.crop, round(width * scale)))
    x0, y0, side = round(x * scale), round(y * scale), max(round(args.crop * scale), 2 * MARK_WIDTH)
    outline = torch.zeros(overview.shape[-2:], dtype=torch.bool)
    outline[y0 : y0 + side, x0 : x0 + side] = True
    outline[y0 + MARK_WIDTH : y0 + side - MARK_WIDTH, x0 + MARK_WIDTH : x0 + side - MARK_WIDTH] = False
    overview = torch.where(outline, torch.tensor(MARK).view(1, 3, 1, 1), overview)

    gap = torch.ones(1, 3, args.crop, GAP)
    save_image(torch.cat([p for panel in (overview, *crops) for p in (panel.cpu(), gap)][:-1], dim=-1), args.out)
    return (f"wrote {args.out}: the photo ({width}×{height}) | its {args.crop}-px square at ({x}, {y}) stylized at full "
            f"size | with --look-size {args.look_size} | the {args.look_size}-px result enlarged")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check(args, parser)
    try:
        print(figure(args))
    except (ValueError, OSError) as err:  # bad images, weights, devices, a crop too large: one line
        return failed(err)
    return 0


if __name__ == "__main__":
    run_main(main)
