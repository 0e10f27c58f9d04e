"""Stylise images from the command line: ``adain-stylize`` (installed) or ``python infer.py``.

    python infer.py --content photo.jpg --style painting.jpg --output out.jpg
    python infer.py --content photos/ --style paintings/ --output-dir outputs/ --alpha 0.8
    python infer.py --method gatys --content photo.jpg --style painting.jpg --output out.jpg --steps 300

Every content × style pair gives one output named ``<content>_stylized_<style>.<ext>``;
with ``--style-weights`` or ``--mask`` the styles are combined into one output per content.
A bad input costs only its own outputs: it is reported on one line, the rest are done,
and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from tqdm import tqdm

from adain.commandline import finite_float, run_main
from adain.errors import ImageError, one_line
from adain.options import IMAGE_EXTENSIONS, OUTPUT_FORMATS, add_model_options, add_version, normalise_weights
from gatys.config import DEFAULTS as GATYS
from gatys.config import INITS, OPTIMIZERS

if TYPE_CHECKING:  # the modules that import torch are imported once the arguments are checked
    from torch import Tensor

    from adain.imageio import LoadedImage
    from adain.transfer import StyleCode

T = TypeVar("T")
# Flags of --method gatys only; unset (None) flags take the defaults of gatys/config.py.
GATYS_FLAGS = ("steps", "optimizer", "lr", "content_weight", "style_weight", "tv_weight", "init", "save_every", "seed")


@dataclass
class Job:
    """One output image: a content, the styles it gets, where it goes."""

    content: Path
    styles: list[Path]
    output: Path


def build_parser() -> argparse.ArgumentParser:
    """The CLI contract (see README)."""
    p = argparse.ArgumentParser(description="Neural style transfer: fast AdaIN (default) or Gatys et al.'s optimisation.")
    add_version(p)
    p.add_argument("--method", default="adain", choices=("adain", "gatys"), help="adain (fast, default) or gatys")
    p.add_argument("--content", nargs="+", required=True, metavar="IMG|DIR", help="content images or folders")
    p.add_argument("--style", nargs="+", required=True, metavar="IMG|DIR", help="style images or folders")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, metavar="FILE", help="output file, when there is exactly one output")
    out.add_argument("--output-dir", type=Path, default=Path("outputs"), metavar="DIR", help="default: outputs/")
    p.add_argument("--alpha", type=finite_float, default=1.0, help="style strength in [0, 1] (default 1)")
    p.add_argument("--style-weights", type=finite_float, nargs="+", metavar="W", help="blend all styles into one output")
    p.add_argument(
        "--preserve-color", nargs="?", const="coral", choices=("coral", "luminance"),
        help="keep the content's colours: coral (default; recolour the style) or luminance",
    )  # fmt: skip
    p.add_argument("--mask", type=Path, help="white → first style, black → second (needs exactly two styles)")
    p.add_argument("--content-size", type=int, default=512, metavar="N", help="shorter side in px; 0 keeps it")
    p.add_argument("--style-size", type=int, default=512, metavar="N", help="shorter side in px; 0 keeps it")
    p.add_argument("--crop", action="store_true", help="centre-crop content and style to squares")
    add_model_options(p, "decoder file (.safetensors, train.py .ckpt, pytorch-AdaIN decoder.pth; default: the bundled one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    g = p.add_argument_group("Gatys optimisation (--method gatys; defaults from gatys/config.py = configs/gatys.yaml)")
    lrs = ", ".join(f"{v:g} for {k}" for k, v in GATYS.learning_rates.items())
    g.add_argument("--steps", type=int, metavar="N", help=f"optimisation steps (default {GATYS.steps})")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {GATYS.optimizer}")
    g.add_argument("--lr", type=finite_float, help=f"step size (default {lrs})")
    g.add_argument("--content-weight", type=finite_float, metavar="W", help=f"default {GATYS.content_weight:g}")
    g.add_argument("--style-weight", type=finite_float, metavar="W", help=f"default {GATYS.style_weight:g}")
    g.add_argument("--tv-weight", type=finite_float, metavar="W", help=f"total-variation weight (default {GATYS.tv_weight:g})")
    g.add_argument("--init", choices=INITS, help=f"starting image (default {GATYS.init}; adain needs a decoder)")
    g.add_argument("--save-every", type=int, metavar="N", help="also write <output>_step<k> every N steps")
    g.add_argument("--seed", type=int, help="seed of the noise initialisation")
    return p


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser, n_styles: int) -> None:
    """Flag combinations that can never work: exit 2 with the usage message."""
    check_method_flags(args, parser)
    if not 0.0 <= args.alpha <= 1.0:
        parser.error(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.content_size < 0 or args.style_size < 0:
        parser.error("--content-size and --style-size must be >= 0")
    if args.style_weights is not None:
        if len(args.style_weights) != n_styles:
            parser.error(f"--style-weights has {len(args.style_weights)} values for {n_styles} style images")
        try:
            normalise_weights(args.style_weights, n_styles)
        except ValueError as err:
            parser.error(f"--style-weights: {err}")
    if args.mask is not None:
        if n_styles != 2:
            parser.error(f"--mask needs exactly two style images, got {n_styles}")
        if args.style_weights is not None:
            parser.error("--mask and --style-weights cannot be combined")
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output must end in one of {', '.join(sorted(OUTPUT_FORMATS))}")


def check_method_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Each method's flags only with that method; unset Gatys flags get their defaults."""
    gatys_flags = [name for name in GATYS_FLAGS if getattr(args, name) is not None]
    if args.method == "adain":
        if gatys_flags:
            parser.error(f"--{gatys_flags[0].replace('_', '-')} applies only to --method gatys")
        return
    adain_only = {"--alpha": args.alpha != 1.0, "--mask": args.mask is not None, "--precision": args.precision != "fp32"}
    adain_flags = [flag for flag, given in adain_only.items() if given]
    if adain_flags:
        parser.error(f"{adain_flags[0]} applies only to --method adain")
    for name in ("steps", "optimizer", "content_weight", "style_weight", "tv_weight", "init"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(GATYS, name))
    args.lr = GATYS.lr(args.optimizer) if args.lr is None else args.lr
    args.save_every = args.save_every or 0
    if args.decoder is not None and args.init != "adain":
        parser.error("--decoder is used by --method gatys only with --init adain")
    if args.steps < 0 or args.save_every < 0:
        parser.error("--steps and --save-every must be >= 0")
    if args.lr <= 0 or min(args.content_weight, args.style_weight, args.tv_weight) < 0:
        parser.error("--lr must be > 0 and the loss weights >= 0")


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


def output_folder_errors(jobs: list[Job]) -> list[str]:
    """Why an output folder cannot be made or written, checked before any model is loaded."""
    errors = []
    for folder in sorted({job.output.parent for job in jobs}):
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir():
            errors.append(f"{folder}: cannot write outputs there: {existing} is a file, not a folder")
        elif not os.access(existing, os.W_OK | os.X_OK):
            errors.append(f"{folder}: cannot write outputs there: {existing} is not writable")
    return errors


def remembered(cache: dict[Path, T | ImageError], path: Path, make: Callable[[], T]) -> T:
    """``make()`` once per path; an :class:`ImageError` is remembered and raised again, so a bad
    style image is read (and reported) once per output, not retried."""
    if path not in cache:
        try:
            cache[path] = make()
        except ImageError as err:
            cache[path] = err
    if isinstance(cache[path], ImageError):
        raise cache[path]
    return cache[path]


class AdaINRenderer:
    """Renders jobs with the fast AdaIN model, encoding each style once."""

    def __init__(self, args: argparse.Namespace):
        from adain.functional import mask_from_rgb
        from adain.imageio import load_image
        from adain.transfer import StyleTransfer

        self.args = args
        self.model = StyleTransfer.load(args.decoder, args.vgg, args.device, args.precision)
        self.mask = None if args.mask is None else mask_from_rgb(load_image(args.mask, crop=args.crop).rgb)
        self._codes: dict[Path, StyleCode | ImageError] = {}

    def style_image(self, path: Path) -> LoadedImage:
        from adain.imageio import load_image

        return load_image(path, self.args.style_size, self.args.crop)

    def __call__(self, content: LoadedImage, job: Job):
        a = self.args
        if a.preserve_color:
            images = [self.style_image(p).rgb for p in job.styles]
            return self.model.stylize(content.rgb, images, a.alpha, a.style_weights, self.mask, a.preserve_color)
        codes = [
            remembered(self._codes, p, lambda p=p: self.model.encode_style(self.style_image(p).rgb)) for p in job.styles
        ]
        return self.model(content.rgb, codes, a.style_weights, self.mask, a.alpha)


class GatysRenderer:
    """Renders jobs with the Gatys optimisation, reading each style image once."""

    def __init__(self, args: argparse.Namespace):
        from adain.device import resolve_device
        from adain.encoder import VGG19Encoder
        from adain.transfer import StyleTransfer

        self.args = args
        device = resolve_device(args.device)
        self.adain_model = StyleTransfer.load(args.decoder, args.vgg, device) if args.init == "adain" else None
        if self.adain_model is not None:
            self.encoder = self.adain_model.encoder
        else:
            self.encoder = VGG19Encoder.load(args.vgg).to(device)
        self._styles: dict[Path, Tensor | ImageError] = {}

    def __call__(self, content: LoadedImage, job: Job) -> Tensor:
        from adain.imageio import load_image, save_image
        from gatys import stylize

        a = self.args
        styles = [remembered(self._styles, p, lambda p=p: load_image(p, a.style_size, a.crop).rgb) for p in job.styles]

        def save_snapshot(step: int, image: Tensor) -> None:
            name = f"{job.output.stem}_step{step:0{len(str(a.steps))}d}{job.output.suffix}"
            save_image(image, job.output.with_name(name), alpha=content.alpha)

        result = stylize(
            content.rgb, styles, style_weights=a.style_weights, steps=a.steps, optimizer=a.optimizer, lr=a.lr,
            content_weight=a.content_weight, style_weight=a.style_weight, tv_weight=a.tv_weight, init=a.init,
            preserve_color=a.preserve_color, seed=a.seed, encoder=self.encoder, adain_model=self.adain_model,
            save_every=a.save_every, callback=save_snapshot, progress=not a.quiet,
        )  # fmt: skip
        return result.image


def run(jobs: list[Job], render: Callable, args: argparse.Namespace, inputs: set[Path]) -> int:
    """Render and save every job; report each distinct failure on one line; return the failure count.

    Jobs come content by content, so each content image is read once for all its styles.
    """
    from adain.imageio import load_image, save_image

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
            save_image(render(loaded[1], job), job.output, alpha=loaded[1].alpha)
        except (ImageError, ValueError, RuntimeError, OSError) as err:
            failures += 1
            message = one_line(err)
            if message not in reported:
                reported.add(message)
                tqdm.write(f"error: {message}", file=sys.stderr)
    return failures


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
    if not jobs:  # every content or every style folder was empty: nothing to load a model for
        print("error: nothing to stylise", file=sys.stderr)
        return 1
    blocked = output_folder_errors(jobs)
    for message in blocked:
        print(f"error: {message}", file=sys.stderr)
    if blocked:
        return 1
    try:
        render = (GatysRenderer if args.method == "gatys" else AdaINRenderer)(args)
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


def cli() -> NoReturn:
    """The ``adain-stylize`` command."""
    run_main(main)


if __name__ == "__main__":
    cli()
