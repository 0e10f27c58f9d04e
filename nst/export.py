"""Export the AdaIN network for other runtimes: ``adain-export --onnx DIR`` (installed).

    adain-export --onnx outputs/onnx [--decoder FILE] [--vgg SRC]

Writes ``style.onnx`` (style → its statistics) and ``stylize.onnx`` (content, statistics, α →
image) with any image size (:mod:`adain.model.onnx_export`). Needs the ``[export]`` extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from adain.core.commandline import failed, run_main
from adain.core.extras import MissingExtraError, require
from adain.core.options import DEFAULT_VGG, VGG_HELP, add_version


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adain-export", description="Export the AdaIN network for other runtimes.")
    add_version(p)
    p.add_argument("--onnx", required=True, type=Path, metavar="DIR", help="write style.onnx and stylize.onnx here")
    p.add_argument("--decoder", metavar="FILE", help="decoder file (default: the bundled one)")
    p.add_argument("--vgg", default=DEFAULT_VGG, metavar="SRC", help=VGG_HELP)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.onnx.exists() and not args.onnx.is_dir():
        print(f"error: {args.onnx}: not a folder", file=sys.stderr)
        return 2
    try:
        require("export", "adain-export")
        from adain.model.onnx_export import export_onnx
        from adain.model.style_transfer import StyleTransfer

        paths = export_onnx(StyleTransfer.load(args.decoder, args.vgg, device="cpu", precision="fp32"), args.onnx)
    except (MissingExtraError, ValueError, OSError) as err:
        return failed(err)
    print("wrote " + " and ".join(map(str, paths)), file=sys.stderr)
    return 0


def cli() -> NoReturn:
    """The ``adain-export`` command."""
    run_main(main)


if __name__ == "__main__":
    cli()
