"""Serve the page and the HTTP API: ``adain-serve`` (installed) or ``python -m adain.app``.

    python -m adain.app [--decoder FILE] [--vgg SRC] [--host 127.0.0.1] [--port 8000] [--device auto]

Without ``--decoder`` the bundled decoder is used; if there is none, this exits 1 with one line.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

from adain.core.commandline import failed, finite_float, run_main
from adain.core.extras import MissingExtraError, require
from adain.core.options import add_model_options, add_version, model_options

from .limits import Limits


def build_parser() -> argparse.ArgumentParser:
    """The command-line contract (see docs/app.md)."""
    d = Limits()
    prog = "python -m adain.app" if sys.argv[0].endswith("__main__.py") else None  # else adain-serve, as typed
    p = argparse.ArgumentParser(prog=prog, description="Serve the style-transfer page and HTTP API.")
    add_version(p)
    add_model_options(p, "decoder file (default: the bundled one); as for infer.py")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--max-upload-mb", type=finite_float, default=d.max_request_bytes / 2**20, metavar="MB",
                   help=f"largest request body, all uploads together (default {d.max_request_bytes / 2**20:g})")  # fmt: skip
    p.add_argument("--max-pixels", type=int, default=d.max_work_pixels, metavar="N",
                   help=f"largest image stylized, after resizing (default {d.max_work_pixels:,})")  # fmt: skip
    p.add_argument("--max-queue", type=int, default=d.max_queue, metavar="N",
                   help=f"requests waiting for or in the model; more get 503 (default {d.max_queue})")  # fmt: skip
    p.add_argument("--max-video-frames", type=int, default=d.max_video_frames, metavar="N",
                   help=f"longest clip /api/stylize-video takes, in frames (default {d.max_video_frames})")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if min(args.max_upload_mb, args.max_pixels, args.max_queue, args.max_video_frames) <= 0:
        parser.error("--max-upload-mb, --max-pixels, --max-queue and --max-video-frames must be positive")
    try:
        require("app", "adain-serve")
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    limits = Limits(
        max_request_bytes=int(args.max_upload_mb * 2**20), max_work_pixels=args.max_pixels, max_queue=args.max_queue,
        max_video_frames=args.max_video_frames,
    )  # fmt: skip

    try:  # bind first: a taken port is reported at once, not after loading the model
        listener = _listen(args.host, args.port)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port} ({err.strerror or err})", file=sys.stderr)
        return 1
    with listener:
        import uvicorn

        from adain.model.style_transfer import StyleTransfer  # here, after the checks: torch takes seconds to import

        from .job_queue import Stylist
        from .server import create_app

        try:
            model = StyleTransfer.load(**model_options(args))
        except (ValueError, OSError) as err:  # no/bad decoder file, bad --vgg, unavailable device
            return failed(err)
        app = create_app(Stylist(model, limits))
        if not _is_loopback(args.host):
            print(f"note: listening on {args.host}: anyone who can reach this machine can use the app", file=sys.stderr)
        print(f"AdaIN app on http://{args.host}:{args.port}/ (API docs at /docs), on {model.device.type} in {model.precision}", file=sys.stderr)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 if the host is an IPv6 address)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def cli() -> NoReturn:
    """The ``adain-serve`` command."""
    run_main(main)


if __name__ == "__main__":
    cli()
