"""Stylize images and videos from the command line: ``adain-stylize`` (installed) or ``python infer.py``.

    python infer.py --content photo.jpg --style painting.jpg --output out.jpg
    python infer.py --content photos/ --style paintings/ --output-dir outputs/ --alpha 0.8
    python infer.py --content clip.mp4 --style painting.jpg --output out.mp4
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import yaml
from tqdm import tqdm

from adain.core.checks import DEFAULT_MAX_TILE
from adain.core.commandline import failed, finite_float, run_main
from adain.core.errors import ImageError, one_line
from adain.core.options import (
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    VIDEO_BATCH,
    VIDEO_EXTENSIONS,
    VIDEO_OUTPUTS,
    VIDEO_SMOOTHING,
    add_model_options,
    add_version,
    model_options,
)
from adain.jobs.request import ImageSource, Request, real_path
from gatys.config import DEFAULTS as GATYS
from gatys.config import INITS, OPTIMIZERS, load_config
from gatys.config import PRECISIONS as GATYS_PRECISIONS

if TYPE_CHECKING:  # the modules that import torch are imported once the arguments are checked
    import torch
    from torch import Tensor

    from adain.media.image_io import LoadedImage

T = TypeVar("T")
# Flags of --method gatys only; unset (None) ones take the --config file's values, else the defaults.
GATYS_FLAGS = ("config", "steps", "optimizer", "lr", "content_weight", "style_weight", "tv_weight", "init", "save_every", "seed")
GATYS_SETTINGS = ("steps", "optimizer", "content_weight", "style_weight", "tv_weight", "init")  # those that are GatysConfig fields


@dataclass
class PlannedOutput:
    """One output image: a content, the styles it gets, where it goes."""

    content: Path
    styles: list[Path]
    output: Path


def build_parser() -> argparse.ArgumentParser:
    """The CLI contract (see docs/command-line.md)."""
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
    p.add_argument("--max-tile", type=int, default=DEFAULT_MAX_TILE, metavar="PX",
                   help=f"stylize an image of more than PX² pixels in tiles of at most PX, in bounded memory (default {DEFAULT_MAX_TILE}; 0: never)")  # fmt: skip
    p.add_argument("--look-size", type=int, default=0, metavar="PX",
                   help="big outputs with the stroke size of a PX result: stylize at this shorter side, "
                        "then upsample guided by the content (default 0: off)")  # fmt: skip
    add_model_options(p, "decoder file (.safetensors, train.py .ckpt, pytorch-AdaIN decoder.pth; default: the bundled one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--verbose", action="store_true", help="also say which device and precision run the network, and why")
    v = p.add_argument_group("video (a --content with a video extension: " + ", ".join(VIDEO_EXTENSIONS) + ")")
    v.add_argument("--smoothing", type=finite_float, default=VIDEO_SMOOTHING, metavar="S",
                   help=f"against flicker: keep this much of the last output where the input is still (default {VIDEO_SMOOTHING:g}; 0: off)")  # fmt: skip
    v.add_argument("--batch-size", type=int, metavar="N",
                   help=f"frames per forward pass (default {VIDEO_BATCH['cpu']} on the CPU, {VIDEO_BATCH['gpu']} on a GPU)")
    g_title = "Gatys optimisation (--method gatys; defaults from --config, else gatys/config.py = configs/gatys.yaml)"
    g = p.add_argument_group(g_title)
    g.add_argument("--config", type=Path, metavar="YAML", help="settings as in configs/gatys.yaml (layers too); flags override it")
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


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Flag combinations that can never work: exit 2 with the usage message. What a single output
    asks for is checked where every tool checks it, in :class:`~adain.jobs.request.Request`."""
    check_method_flags(args, parser)
    if not 0 <= args.smoothing < 1:
        parser.error(f"--smoothing must be in [0, 1), got {args.smoothing:g}")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")


def check_method_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Each method's flags only with that method; unset Gatys flags get their defaults."""
    gatys_flags = [name for name in GATYS_FLAGS if getattr(args, name) is not None]
    if args.method == "adain":
        if gatys_flags:
            parser.error(f"--{gatys_flags[0].replace('_', '-')} applies only to --method gatys")
        return
    adain_only = {
        "--alpha": args.alpha != 1.0,
        "--mask": args.mask is not None,
        f"--precision {args.precision}": args.precision not in ("auto", *GATYS_PRECISIONS),
        "--compile": args.compile is not None,
        "--max-tile": args.max_tile != DEFAULT_MAX_TILE,
        "--look-size": args.look_size != 0,
        "--smoothing": args.smoothing != VIDEO_SMOOTHING,
        "--batch-size": args.batch_size is not None,
    }
    adain_flags = [flag for flag, given in adain_only.items() if given]
    if adain_flags:
        parser.error(f"{adain_flags[0]} applies only to --method adain")
    try:
        settings = GATYS if args.config is None else load_config(args.config)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as err:
        parser.error(f"--config {args.config}: {one_line(err)}")
    flags = {name: getattr(args, name) for name in GATYS_SETTINGS if getattr(args, name) is not None}
    try:  # the flags override the file (or the defaults); GatysConfig checks the result
        args.gatys = replace(settings, **flags).with_lr(args.lr)
    except ValueError as err:
        parser.error(str(err))
    args.save_every = args.save_every or 0
    if args.save_every < 0:
        parser.error("--save-every must be >= 0")
    if args.decoder is not None and args.gatys.init != "adain":
        parser.error("--decoder is used by --method gatys only with --init adain")


def is_video(path: Path) -> bool:
    """Whether a content is read as a clip (by its extension)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def expand(items: Sequence[str], extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[list[Path], list[str]]:
    """Files as given and the entries of folders named with one of ``extensions`` (sorted); plus an
    error for each folder that is empty or cannot be listed. Nothing else is checked here: a path
    that is no readable file (missing, behind a folder without permission, a dangling or looping
    link, a subfolder called x.jpg) is named on its own line when it is read, and the rest are done."""
    paths, errors = [], []
    for item in items:
        path = Path(item)
        if not os.path.isdir(path):  # never raises: an unreachable path is read, and reported, as a file
            paths.append(path)
            continue
        try:
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in extensions)
        except OSError as err:
            errors.append(f"{path}: cannot list the folder ({err.strerror or err})")
            continue
        if not found:
            kind = "images" if extensions == IMAGE_EXTENSIONS else "images or videos"
            errors.append(f"{path}: folder has no {kind} ({', '.join(extensions)})")
        paths += found
    return paths, errors


def plan_jobs(contents: list[Path], styles: list[Path], args: argparse.Namespace) -> list[PlannedOutput]:
    """Every content × style pair, or one blended output per content; unique output names."""
    combined = args.style_weights is not None or args.mask is not None
    groups = [styles] if combined else [[s] for s in styles]
    jobs, taken = [], set()
    for content in contents:
        formats, default = (VIDEO_OUTPUTS, ".mp4") if is_video(content) else (OUTPUT_FORMATS, ".png")
        ext = content.suffix.lower() if content.suffix.lower() in formats else default
        for group in groups:
            if args.output is not None:
                output = args.output
            else:
                stem = f"{content.stem}_stylized_{'+'.join(s.stem for s in group)}"
                output, n = args.output_dir / f"{stem}{ext}", 2
                while output in taken:
                    output, n = args.output_dir / f"{stem}_{n}{ext}", n + 1
            taken.add(output)
            jobs.append(PlannedOutput(content, group, output))
    return jobs


def request_for(job: PlannedOutput, args: argparse.Namespace) -> Request:
    """The request of one output; ValueError for options that can never work."""
    return Request(
        ImageSource.file(job.content),
        tuple(ImageSource.file(s) for s in job.styles),
        style_weights=None if args.style_weights is None else tuple(args.style_weights),
        mask=None if args.mask is None else ImageSource.file(args.mask),
        alpha=args.alpha,
        preserve_color=args.preserve_color,
        content_size=args.content_size,
        style_size=args.style_size,
        crop=args.crop,
        max_tile=args.max_tile,
        look_size=args.look_size,
    )


def snapshot_path(output: Path, step: int, steps: int) -> Path:
    """Where ``--save-every`` puts the image after ``step`` of ``steps``: ``<output>_step<k>``, k zero-padded."""
    return output.with_name(f"{output.stem}_step{step:0{len(str(steps))}d}{output.suffix}")


def written(job: PlannedOutput, args: argparse.Namespace) -> list[Path]:
    """Every file a job writes: its output and, with ``--save-every``, the Gatys snapshots."""
    every = args.save_every or 0
    steps = range(every, args.gatys.steps + 1, every) if every else ()
    return [job.output, *(snapshot_path(job.output, step, args.gatys.steps) for step in steps)]


def output_errors(jobs: list[PlannedOutput], args: argparse.Namespace) -> list[str]:
    """Outputs that cannot be written, found before any model is loaded: a format that cannot
    hold the content (an image as .mp4, a video as .png, a .gif), a folder where a file would go,
    or a folder that cannot be made or written."""
    errors = []
    for job in jobs:
        video = is_video(job.content)
        kind = "a video" if video else "an image"
        formats = VIDEO_OUTPUTS if video else tuple(OUTPUT_FORMATS)
        if job.output.suffix.lower() not in formats:
            errors.append(f"{job.output}: cannot write {kind} there; use one of {', '.join(sorted(formats))}")
        errors += [f"{path}: is a folder; cannot write {kind} there" for path in written(job, args) if os.path.isdir(path)]
    for folder in sorted({job.output.parent for job in jobs}):
        existing = next(p for p in (folder, *folder.parents) if os.path.exists(p))  # os.path's never raise
        if not os.path.isdir(existing):
            errors.append(f"{folder}: cannot write outputs there: {existing} is a file, not a folder")
        elif not os.access(existing, os.W_OK | os.X_OK):
            errors.append(f"{folder}: cannot write outputs there: {existing} is not writable")
    return errors


def check_job(job: PlannedOutput, args: argparse.Namespace, inputs: set[Path]) -> None:
    """:class:`ImageError` for what would otherwise fail only once the job is rendered: a file it
    writes that is one of the inputs, an image larger than its output format holds, a mask not
    shaped like the content (named by its file). Reads image headers only."""
    from adain.media.image_io import check_output_size, planned_size
    from adain.model.functional import check_mask_shape

    for path in written(job, args):
        if real_path(path) in inputs:
            raise ImageError(path, "refusing to overwrite an input file")
    if is_video(job.content):
        return
    width, height = planned_size(job.content, args.content_size, args.crop)
    check_output_size(job.output, width, height)
    if args.mask is not None:
        mask_width, mask_height = planned_size(args.mask, args.content_size, args.crop)
        try:
            check_mask_shape((mask_height, mask_width), (height, width))
        except ValueError as err:
            raise ImageError(args.mask, str(err)) from None


def remembered(cache: dict[str, T | ImageError], key: str, make: Callable[[], T]) -> T:
    """``make()`` once per key; an :class:`ImageError` is remembered and raised again, so a bad
    style image is read (and reported) once, not for every output."""
    if key not in cache:
        try:
            cache[key] = make()
        except ImageError as err:
            cache[key] = err
    if isinstance(cache[key], ImageError):
        raise cache[key]
    return cache[key]


def say_precision(args: argparse.Namespace, device: torch.device, precision: str) -> None:
    """With ``--verbose``, one line: the device and precision the network runs in, and why."""
    from adain.core.device import auto_precision

    if args.verbose:
        why = auto_precision(device)[1] if args.precision == "auto" else f"--precision {args.precision}"
        print(f"{args.method} on {device.type} in {precision} ({why})", file=sys.stderr)


class AdaINRenderer:
    """Renders requests with the fast AdaIN model, through the path the app uses too."""

    def __init__(self, args: argparse.Namespace, styles: int):
        from adain.jobs.image import StyleCodes
        from adain.model.style_transfer import StyleTransfer

        self.model = StyleTransfer.load(**model_options(args))
        say_precision(args, self.model.device, self.model.precision)
        self.codes = StyleCodes(capacity=max(1, styles))  # each style encoded once per run
        self.quiet, self.batch_size, self.smoothing = args.quiet, args.batch_size, args.smoothing

    def __call__(self, request: Request, job: PlannedOutput) -> LoadedImage:
        from adain.jobs.image import stylize

        return stylize(self.model, request, self.codes)

    def video(self, request: Request, job: PlannedOutput) -> str:
        """Stylize a clip into ``job.output`` with a progress bar (frames, frames/s, ETA); a summary line."""
        from adain.jobs.video import stylize_video

        with tqdm(desc=job.content.name, unit="frame", leave=False, disable=self.quiet) as bar:

            def advance(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)

            done = stylize_video(self.model, request, job.output, self.codes, self.batch_size, self.smoothing, advance)
        width, height = done.size
        return (f"{job.output}: {done.frames} frames, {width}×{height} at {float(done.rate):g} fps, "
                f"in {done.seconds:.1f} s ({done.fps:.2f} frames/s)")  # fmt: skip


class GatysRenderer:
    """Renders requests with the Gatys optimisation, reading each style image once."""

    def __init__(self, args: argparse.Namespace, styles: int):
        from adain.core.device import resolve_device, resolve_precision
        from adain.model.style_transfer import StyleTransfer
        from adain.vgg.encoder import VGG19Encoder

        self.args = args
        device = resolve_device(args.device)
        self.precision = resolve_precision(args.precision, device)
        say_precision(args, device, self.precision)
        self.adain_model = StyleTransfer.load(args.decoder, args.vgg, device) if args.gatys.init == "adain" else None
        if self.adain_model is not None:
            self.encoder = self.adain_model.encoder
        else:
            self.encoder = VGG19Encoder.load(args.vgg).to(device)
        self._styles: dict[str, Tensor | ImageError] = {}

    def __call__(self, request: Request, job: PlannedOutput) -> LoadedImage:
        from adain.jobs.image import load
        from adain.media.image_io import LoadedImage, save_image
        from gatys import stylize

        a = self.args
        content = load(request.content, request.content_size, request.crop)
        styles = [
            remembered(self._styles, s.key, lambda s=s: load(s, request.style_size, request.crop).rgb) for s in request.styles
        ]

        def save_snapshot(step: int, image: Tensor) -> None:
            save_image(image, snapshot_path(job.output, step, a.gatys.steps), alpha=content.alpha)

        result = stylize(
            content.rgb, styles, a.gatys, style_weights=request.style_weights, preserve_color=request.preserve_color,
            seed=a.seed, encoder=self.encoder, adain_model=self.adain_model, save_every=a.save_every,
            callback=save_snapshot, progress=not a.quiet, precision=self.precision,
        )  # fmt: skip
        return LoadedImage(result.image, content.alpha)

    def video(self, request: Request, job: PlannedOutput) -> str:
        """Clips are AdaIN's: an optimisation per frame would take hours and flicker."""
        raise ImageError(job.content, "--method gatys stylizes images, not videos")


def run(jobs: list[tuple[PlannedOutput, Request]], render: Callable, args: argparse.Namespace, inputs: set[Path]) -> int:
    """Render and save every job; report each distinct failure on one line; return the failure count."""
    from adain.media.image_io import save_image

    failures, reported = 0, set()
    for job, request in tqdm(jobs, desc="stylizing", unit="img", disable=args.quiet or len(jobs) < 2):
        try:
            check_job(job, args, inputs)
            if is_video(job.content):
                summary = render.video(request, job)
                if not args.quiet:
                    tqdm.write(summary, file=sys.stderr)
                continue
            out = render(request, job)
            save_image(out.rgb, job.output, alpha=out.alpha)
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
    contents, content_errors = expand(args.content, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    styles, style_errors = expand(args.style)
    check_args(args, parser)
    jobs = plan_jobs(contents, styles, args)
    if args.output is not None and len(jobs) > 1:
        parser.error(f"--output names one file but there are {len(jobs)} outputs; use --output-dir")
    try:
        requests = [request_for(job, args) for job in jobs]
    except ValueError as err:
        parser.error(str(err))
    for message in content_errors + style_errors:
        print(f"error: {message}", file=sys.stderr)
    if not jobs:  # every content or every style folder was empty: nothing to load a model for
        print("error: nothing to stylize", file=sys.stderr)
        return 1
    blocked = output_errors(jobs, args)
    for message in blocked:
        print(f"error: {message}", file=sys.stderr)
    if blocked:
        return 1
    try:
        render = (GatysRenderer if args.method == "gatys" else AdaINRenderer)(args, len(styles))
    except (ImageError, ValueError, OSError) as err:
        return failed(err)
    inputs = {real_path(p) for p in contents + styles + ([args.mask] if args.mask else [])}
    lost = run(list(zip(jobs, requests)), render, args, inputs)
    skipped = len(content_errors) + len(style_errors)
    if lost or skipped:
        empty = f", {skipped} folder{'s' * (skipped != 1)} empty or unreadable" if skipped else ""
        print(f"{len(jobs) - lost} of {len(jobs)} outputs written; {lost} failed{empty}", file=sys.stderr)
    elif not args.quiet:
        where = args.output if args.output is not None else args.output_dir
        print(f"wrote {len(jobs)} output{'s' * (len(jobs) != 1)} to {where}", file=sys.stderr)
    return 1 if lost or skipped else 0


def cli() -> NoReturn:
    """The ``adain-stylize`` command."""
    run_main(main)


if __name__ == "__main__":
    cli()
