"""The README's results figure, from the bundled examples and a decoder, in one command.

    python scripts/readme_figure.py --out docs/images/results.jpg [--decoder FILE]

Rows, each panel a square crop stylized at ``--size`` px and shown at ``--cell`` px:

1. a header of styles, then 4 contents × 4 styles at α = 1;
2. style interpolation: one photo between two paintings (the first and the last), weights 1:0 → 0:1;
3. style strength: α from 0 to 1, with the third painting;
4. colour preservation (CORAL, luminance) and spatial control (a mask: the first painting left, the last right).

Every panel is one :class:`~adain.jobs.request.Request` through :func:`adain.jobs.image.stylize`, the
path of ``infer.py`` and the app. Run it again after a new decoder ships, so that the front page
shows what the package does today.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from adain.core.commandline import failed, report_file, run_main
from adain.core.options import add_model_options, model_options
from adain.jobs.image import StyleCodes, load, stylize
from adain.jobs.request import ImageSource, Request
from adain.media.image_io import encode_image, save_image, tensor_to_pil
from adain.model.style_transfer import StyleTransfer

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content"
STYLE = ROOT / "examples" / "style"
CONTENTS = ["chelsea", "astronaut", "coffee", "rocket"]
STYLES = ["van_gogh_starry_night", "hokusai_great_wave", "kandinsky_composition_vii", "munch_the_scream"]
STEPS = [0.0, 0.25, 0.5, 0.75, 1.0]  # interpolation weights and α values along a row
GAP = 6  # px of white between panels
CAPTION = 16  # px of caption strip under a panel of rows 2-4


@dataclass(frozen=True)
class Panel:
    """One cell: an image (a source shown as it is, or a request's result) and its caption."""

    image: Image.Image
    caption: str = ""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="side each square panel is stylized at (default 512)")
    p.add_argument("--cell", type=int, default=224, help="side each panel is shown at in the figure (default 224)")
    p.add_argument("--out", type=report_file, required=True, help="the figure (JPEG or PNG)")
    add_model_options(p, "decoder file (default: the bundled one)")
    return p


class Figure:
    """Makes the panels: every result a request on the shared path, styles encoded once."""

    def __init__(self, model: StyleTransfer, size: int):
        self.model, self.size, self.codes = model, size, StyleCodes()

    def source(self, path: Path) -> Panel:
        """An example image as the requests see it: its centre square at the working size."""
        return Panel(tensor_to_pil(load(ImageSource.file(path), self.size, crop=True).rgb[0]))

    def result(self, content: Path, styles: Sequence[Path], caption: str = "", **options: object) -> Panel:
        """``content`` stylized with ``styles`` and ``options`` (the fields of a :class:`Request`)."""
        request = Request(
            ImageSource.file(content), tuple(ImageSource.file(s) for s in styles), content_size=self.size,
            style_size=self.size, crop=True, **options,  # type: ignore[arg-type]
        )  # fmt: skip
        with torch.inference_mode():
            out = stylize(self.model, request, self.codes)
        return Panel(tensor_to_pil(out.rgb[0]), caption)

    def half_mask(self) -> ImageSource:
        """A square mask, white on the left half (first style), black on the right (second)."""
        mask = torch.zeros(1, 3, self.size, self.size)
        mask[..., : self.size // 2] = 1.0
        return ImageSource(encode_image(mask, "PNG"), "left-half mask")

    def rows(self) -> list[list[Panel | None]]:
        """The figure's rows of panels, as the module docstring lists them."""
        contents = [CONTENT / f"{name}.jpg" for name in CONTENTS]
        styles = [STYLE / f"{name}.jpg" for name in STYLES]
        grid: list[list[Panel | None]] = [[None, *(self.source(s) for s in styles)]]  # the corner stays empty
        grid += [[self.source(c), *(self.result(c, [s]) for s in styles)] for c in contents]
        photo, first, second = contents[0], styles[0], styles[3]
        between = [self.result(photo, [first, second], f"weights {1 - w:g} : {w:g}", style_weights=(1 - w, w)) for w in STEPS]
        strength = [self.result(photo, [styles[2]], f"alpha = {a:g}", alpha=a) for a in STEPS]
        mask = self.half_mask()
        control = [
            self.result(contents[2], [styles[0]], "no colour kept"),
            self.result(contents[2], [styles[0]], "colour kept: CORAL", preserve_color="coral"),
            self.result(contents[2], [styles[0]], "colour kept: luminance", preserve_color="luminance"),
            Panel(tensor_to_pil(load(mask, self.size, crop=True).rgb[0]), "mask"),
            self.result(contents[2], [first, second], "masked: left | right", mask=mask),
        ]
        return [*grid, between, strength, control]


def compose(rows: Sequence[Sequence[Panel | None]], cell: int) -> Image.Image:
    """The rows laid out on white, each panel ``cell`` px square, captions under those that have one."""
    heights = [cell + (CAPTION if any(p and p.caption for p in row) else 0) for row in rows]
    width = max(len(row) for row in rows) * (cell + GAP) + GAP
    sheet = Image.new("RGB", (width, sum(heights) + GAP * (len(rows) + 1)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=CAPTION - 4)  # Pillow's own font: the same on every machine
    y = GAP
    for row, height in zip(rows, heights):
        for i, panel in enumerate(row):
            if panel is None:
                continue
            x = GAP + i * (cell + GAP)
            sheet.paste(panel.image.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
            draw.rectangle((x - 1, y - 1, x + cell, y + cell), outline="#bbbbbb")  # a white panel (the mask) keeps its edge
            if panel.caption:
                left, _, right, _ = draw.textbbox((0, 0), panel.caption, font=font)
                draw.text((x + (cell - (right - left)) // 2, y + cell + 2), panel.caption, fill="black", font=font)
        y += height + GAP
    return sheet


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size < 16 or args.cell < 16:
        parser.error("--size and --cell must be at least 16")
    try:
        model = StyleTransfer.load(**model_options(args))
        sheet = compose(Figure(model, args.size).rows(), args.cell)
        save_image(sheet, args.out, quality=90)
    except (OSError, ValueError) as err:
        return failed(err)
    print(f"wrote {args.out} ({sheet.width}×{sheet.height})")
    return 0


if __name__ == "__main__":
    run_main(main)
