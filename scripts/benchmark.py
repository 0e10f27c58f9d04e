"""Fast (AdaIN) vs optimisation (Gatys): speed and quality on the same image pairs.

    python scripts/benchmark.py --content examples/content --style examples/style --decoder DECODER \\
        --sizes 256 512 --out outputs/benchmark

Speed as in the AdaIN paper's Table 1 (seconds per image at each size, with and without style
encoding, batch 1, plus a batched AdaIN row) against a plain fp32 eager PyTorch reference of
the same network, measured in the same run; quality as the three losses of :mod:`compare.metrics`
for AdaIN, Gatys and the identity (output = content). Writes benchmark.md, benchmark.json and
grid.jpg (content | style | AdaIN | Gatys) to ``--out``. Pair i is content i and style i, each
list cycled, so different folder sizes still give varied pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from adain.core.commandline import failed, run_main
from adain.core.device import resolve_device, resolve_precision
from adain.core.options import add_model_options
from adain.model import style_transfer as transfer
from adain.model.decoder_file import load_decoder
from adain.vgg.encoder import VGG19Encoder
from compare import report
from compare.benchmark import Setup, run
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

# adain-bf16 / adain-compiled: this package in bf16 / compiled, beside --precision's own AdaIN row; onnxruntime, openvino
# (its default precision) and openvino-f32: the adain-export graphs on those engines, with the [export] extra
METHODS = ("adain", "gatys", "onnxruntime", "adain-bf16", "adain-compiled", "openvino", "openvino-f32")
DEFAULT_METHODS = ("adain", "gatys", "onnxruntime")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content", required=True, type=Path, metavar="DIR|IMG", help="content images (a folder or one file)")
    p.add_argument("--style", required=True, type=Path, metavar="DIR|IMG", help="style images (a folder or one file)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS, metavar="METHOD",
                   help=f"of {', '.join(METHODS)} (default: {' '.join(DEFAULT_METHODS)})")  # fmt: skip
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="square sides in px, multiples of 8 (default 256 512)")
    p.add_argument("--gatys-steps", type=int, default=500, help="L-BFGS steps per Gatys image (default 500)")
    p.add_argument("--repeat", type=int, default=3, help="timed AdaIN runs per measurement, after one warm-up (default 3)")
    p.add_argument("--batch", type=int, default=4, help="contents per batch in the batched AdaIN row (default 4)")
    p.add_argument("--pairs", type=int, default=4, help="content/style pairs (default 4)")
    p.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's, one per core)")
    add_model_options(p, f"AdaIN decoder (default: the bundled one); {RANDOM}: untrained, seeded weights, for speed only")
    p.add_argument("--out", type=Path, default=Path("outputs/benchmark"), metavar="DIR", help="default: outputs/benchmark")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse impossible settings before anything is loaded (exit 2 with the usage)."""
    if any(s < 16 or s % 8 for s in args.sizes):
        parser.error("--sizes must be multiples of 8, at least 16")
    if min(args.repeat, args.batch, args.pairs, args.gatys_steps) < 1:
        parser.error("--repeat, --batch, --pairs and --gatys-steps must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")


def prepare(args: argparse.Namespace, argv: list[str]) -> tuple[Setup, VGG19Encoder, torch.nn.Module, dict[str, object]]:
    """Images, models and the report's header facts; ValueError/OSError on bad input.

    Unreadable images are left out (``meta["skipped"]``, one line each) and the rest measured."""
    contents, bad_contents = readable(image_files(args.content), "content")
    styles, bad_styles = readable(image_files(args.style), "style")
    decoder_path = Path(args.decoder) if args.decoder is not None else transfer.DEFAULT_DECODER
    if args.decoder is None and not decoder_path.is_file():
        raise ValueError(
            f"no decoder is bundled ({decoder_path} is missing); pass --decoder FILE, or --decoder {RANDOM} to measure speed only"
        )
    device = resolve_device(args.device)
    args.precision = resolve_precision(args.precision, device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every size repeats, so autotuning pays off
    encoder = VGG19Encoder.load(args.vgg)
    if is_random(args.decoder):  # speed does not depend on the weights
        decoder, note = random_decoder(), "untrained, seeded: speed only, its quality numbers mean nothing"
    else:
        decoder, _ = load_decoder(decoder_path, encoder.identity, encoder.layout)
        note = decoder_note(decoder_path)
    pairs = cycled_pairs(contents, styles, args.pairs)
    setup = Setup(
        pairs, sorted(set(args.sizes)), list(dict.fromkeys(args.methods)), device, args.precision, args.compile,
        args.gatys_steps, args.repeat, args.batch, progress=not args.quiet,
    )  # fmt: skip
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        **report.run_facts("scripts/benchmark.py", argv, device, args, pairs, bad_contents + bad_styles),
        "threads": torch.get_num_threads(),
        "compile": args.compile,
        "decoder": str(decoder_path),
        "decoder_note": note,
        "repeat": args.repeat,
        "batch": args.batch,
        "gatys_steps": args.gatys_steps,
    }
    return setup, encoder, decoder, meta


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    check(args, parser)
    try:
        setup, encoder, decoder, meta = prepare(args, argv)
        say_left_out(meta["skipped"])
        load_before = os.getloadavg()[0]
        results = run(setup, encoder, decoder)
        meta["load_average"] = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        written = report.write(args.out, meta, results)
    except (ValueError, OSError) as err:  # bad images, weights, devices: one line, no traceback
        return failed(err)
    return finish(report.markdown(meta, results), written, meta["skipped"], "measured")


if __name__ == "__main__":
    run_main(main)
