"""What the command-line entry points share: errors as one line, and a quiet Ctrl-C.

``infer.py``, ``train.py`` and the scripts print ``error: <one line>`` and exit non-zero on bad
input instead of a traceback; an interrupt exits 130 (128 + SIGINT) with one word. The library's
own messages that quote another error use :func:`one_line` too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def one_line(err: BaseException, last: bool = False) -> str:
    """An exception as one line: its first non-blank line, or with ``last`` its last one
    (a data-loader worker's or a library's wrapped error ends with the real reason)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1] if last else lines[0]


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


def run_main(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())``, with Ctrl-C reported as "interrupted" (exit 130), not a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)
