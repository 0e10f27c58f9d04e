"""Evaluate style transfer methods on the same content/style pairs: three losses per method, a table, JSON and a grid.

    python scripts/evaluate.py --content val/content --style val/style --decoder DECODER --device cuda \\
        --methods identity style adain adain@0.5 adain+gatys@50 adain+gatys@100 gatys@500 \\
        --grid-methods adain adain+gatys@100 gatys@500 --out outputs/evaluation

Methods (see compare.evaluation): identity (the content as output), style (the style image as
output), adain[@ALPHA] (the decoder, α default 1), gatys[@STEPS] (L-BFGS from the content) and
adain+gatys[@STEPS] (from the AdaIN output). Pair i is content i and style i, each list cycled,
both read at --size (shorter side) and centre-cropped to squares. Writes evaluation.md (also
printed), evaluation.json (with per-pair losses) and grid.jpg (content | style | each grid method,
the first --grid-rows pairs) to --out. Unreadable images are named on one line each and left out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from adain.core.commandline import failed, run_main
from adain.core.device import resolve_device, resolve_precision
from adain.core.options import add_model_options, model_options
from adain.model import style_transfer as transfer
from adain.vgg.encoder import VGG19Encoder
from compare import evaluation
from compare.inputs import (
    RANDOM,
    cycled_pairs,
    decoder_note,
    finish,
    image_files,
    is_random,
    random_decoder,
    readable,
    say_left_out,
)
from compare.report import run_facts

MIN_SIZE = transfer.MIN_NETWORK_SIDE  # px: smaller images are pooled away before relu4_1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content", required=True, type=Path, metavar="DIR|IMG", help="content images (a folder or one file)")
    p.add_argument("--style", required=True, type=Path, metavar="DIR|IMG", help="style images (a folder or one file)")
    p.add_argument(
        "--methods", nargs="+", default=list(evaluation.DEFAULT_METHODS), metavar="SPEC",
        help=f"{evaluation.SPEC_HELP} (default: {' '.join(evaluation.DEFAULT_METHODS)})",
    )  # fmt: skip
    p.add_argument(
        "--grid-methods", nargs="+", metavar="SPEC", help="the grid's columns after content and style (default: --methods)"
    )
    p.add_argument("--grid-rows", type=int, default=6, metavar="N", help="pairs shown in the grid (default 6)")
    p.add_argument("--pairs", type=int, metavar="N", help="content/style pairs (default: the larger image count)")
    p.add_argument("--size", type=int, default=512, metavar="PX", help="shorter side, then centre-cropped square (default 512)")
    add_model_options(p, f"AdaIN decoder (default: the bundled one); {RANDOM}: untrained, seeded weights")
    p.add_argument("--out", type=Path, default=Path("outputs/evaluation"), metavar="DIR", help="default: outputs/evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse impossible settings before anything is loaded (exit 2 with the usage); specs become methods."""
    try:
        args.methods = evaluation.parse_methods(args.methods)
        args.grid_methods = evaluation.parse_methods(args.grid_methods) if args.grid_methods else args.methods
    except ValueError as err:
        parser.error(str(err))
    missing = [m.spec for m in args.grid_methods if m not in args.methods]
    if missing:
        parser.error(f"--grid-methods {' '.join(missing)}: not among --methods")
    if args.size < MIN_SIZE:
        parser.error(f"--size must be at least {MIN_SIZE}")
    if args.grid_rows < 1 or (args.pairs is not None and args.pairs < 1):
        parser.error("--grid-rows and --pairs must be >= 1")


def prepare(
    args: argparse.Namespace, argv: list[str]
) -> tuple[evaluation.Setup, VGG19Encoder, transfer.StyleTransfer | None, dict[str, object]]:
    """Pairs, models and the report's header facts; ValueError/OSError on bad input (a missing bundled
    decoder is :class:`~adain.model.style_transfer.NoDecoderError`). The decoder is loaded only if a method uses it."""
    contents, bad_contents = readable(image_files(args.content), "content")
    styles, bad_styles = readable(image_files(args.style), "style")
    device = resolve_device(args.device)
    args.precision = resolve_precision(args.precision, device)
    model, decoder, note = None, None, None
    if any(m.needs_model for m in args.methods):
        if is_random(args.decoder):
            model = transfer.StyleTransfer(VGG19Encoder.load(args.vgg), random_decoder(), args.precision, args.compile).to(device)
            decoder, note = RANDOM, "untrained, seeded: its numbers mean nothing"
        else:
            model = transfer.StyleTransfer.load(**model_options(args))
            decoder = str(args.decoder if args.decoder is not None else transfer.DEFAULT_DECODER)
            note = decoder_note(Path(decoder))
    encoder = model.encoder if model is not None else VGG19Encoder.load(args.vgg).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one size throughout, so autotuning pays off
    pairs = cycled_pairs(contents, styles, args.pairs or max(len(contents), len(styles)))
    setup = evaluation.Setup(pairs, args.size, args.methods, args.grid_methods, args.grid_rows, progress=not args.quiet)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        **run_facts("scripts/evaluate.py", argv, device, args, pairs, bad_contents + bad_styles),
        "decoder": decoder,
        "decoder_note": note,
        "encoder": encoder.identity,
        "content": str(args.content),
        "style": str(args.style),
        "contents": len(contents),
        "styles": len(styles),
        "size": args.size,
        "methods": [m.spec for m in args.methods],
        "grid_methods": [m.spec for m in args.grid_methods],
    }
    return setup, encoder, model, meta


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    check(args, parser)
    try:
        setup, encoder, model, meta = prepare(args, argv)
        say_left_out(meta["skipped"])
        result = evaluation.evaluate(setup, encoder, model)
        written = evaluation.write(args.out, meta, result)
    except (ValueError, OSError) as err:  # bad images, weights, devices, no decoder: one line, no traceback
        return failed(err)
    return finish(evaluation.markdown(meta, result), written, meta["skipped"], "evaluated")


if __name__ == "__main__":
    run_main(main)
