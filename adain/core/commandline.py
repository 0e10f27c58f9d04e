"""What the command-line entry points share: finite float flags, report paths checked up front, and a quiet Ctrl-C.

``infer.py``, ``train.py`` and the scripts print ``error: <one line>`` (:func:`adain.core.errors.one_line`)
and exit non-zero on bad input instead of a traceback; an interrupt exits 130 (128 + SIGINT)
with one word.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from adain.core.errors import one_line

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_FAILED = 1  # bad input, a missing file, a refused setting: said in one line


def failed(err: BaseException) -> int:
    """``error: <one line>`` on stderr for an expected failure, and the exit status to return."""
    print(f"error: {one_line(err)}", file=sys.stderr)
    return EXIT_FAILED


def finite_float(text: str) -> float:
    """argparse type of every float flag: NaN and ±inf are refused at parsing (exit 2), since
    they pass range checks silently (``nan < 0`` is false) and poison the result."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def report_file(text: str) -> Path:
    """argparse type of a report's ``--out``: a folder, or a path under a file, is refused at parsing
    (exit 2) rather than when the report is written, after the whole measurement."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: cannot write a report there (a folder)")
    folder = next(p for p in path.absolute().parents if p.exists())
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: cannot write a report there ({folder} is a file)")
    return path


def run_main(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())``, with Ctrl-C reported as "interrupted" (exit 130), not a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)
