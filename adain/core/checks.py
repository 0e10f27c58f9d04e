"""The rules a stylization job's settings obey, each checked by one function: a :class:`Request`
checks itself with them, and so do the Python API's arguments, so every path refuses the same
things with the same one-line ``ValueError``. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from adain.core.options import MIN_SIDE, PRESERVE_COLOR


def check_alpha(alpha: float) -> None:
    """ValueError unless the style strength is a number in [0, 1]."""
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def check_styles(count: int, style_weights: Sequence[float] | None, masked: bool) -> None:
    """ValueError unless the weights fit the styles and a mask has exactly two styles, unweighted."""
    if count < 1:
        raise ValueError("give at least one style")
    if style_weights is not None:
        normalise_weights(style_weights, count)  # raises on a wrong count, sign or a non-finite weight
    if masked and (count != 2 or style_weights is not None):
        raise ValueError(f"a mask needs exactly two styles and no style weights, got {count} styles")


def check_preserve_color(method: bool | str | None) -> str | None:
    """A ``preserve_color`` argument as a method name: False/None → None, True → ``"coral"``."""
    if method is False or method is None:
        return None
    if method is True:
        return "coral"
    if method not in PRESERVE_COLOR:
        raise ValueError(f"unknown colour preservation method {method!r}; choose from {PRESERVE_COLOR}")
    return method


MIN_TILE = 64  # px: smaller tiles would spend most of their work on the margin (adain.model.tiling.TILE_HALO)
MAX_TILE = 4000  # px: with its margins, about the most processed in one piece (imageio.MAX_WORK_PIXELS)
DEFAULT_MAX_TILE = 1024  # px: images of more than its square are stylized in tiles of at most this side


def check_max_tile(max_tile: int) -> None:
    """ValueError unless ``max_tile`` is 0 (never tile) or a multiple of 8 from ``MIN_TILE`` to ``MAX_TILE``."""
    if max_tile != 0 and not (MIN_TILE <= max_tile <= MAX_TILE and max_tile % 8 == 0):
        raise ValueError(f"max_tile must be 0 (never tile) or a multiple of 8 from {MIN_TILE} to {MAX_TILE}, got {max_tile}")


def check_sizes(**sizes: int) -> None:
    """ValueError unless every size (a shorter side in px) is 0 (off, or the image's own) or at least
    ``MIN_SIDE``, the smallest image read."""
    for name, size in sizes.items():
        if size < 0:
            raise ValueError(f"{name} must be >= 0, got {size}")
        if 0 < size < MIN_SIDE:
            raise ValueError(f"{name} must be 0 or at least {MIN_SIDE} px, got {size}")


def check_stylize(
    alpha: float,
    style_count: int,
    style_weights: Sequence[float] | None,
    masked: bool,
    preserve_color: bool | str | None,
    max_tile: int,
    look_size: int,
) -> str | None:
    """Every rule of one stylization's settings, in one call (a :class:`~adain.jobs.request.Request`'s
    and the Python API's): ValueError for the first broken, else the colour method (see
    :func:`check_preserve_color`)."""
    check_alpha(alpha)
    check_styles(style_count, style_weights, masked)
    check_max_tile(max_tile)
    check_sizes(look_size=look_size)
    return check_preserve_color(preserve_color)


def normalise_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Blend weights scaled to sum 1; equal weights when ``None``; ValueError for a wrong count, or
    weights that are negative, not finite or all zero."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} style weights for {count} styles")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or max(weights) <= 0:
        raise ValueError(f"style weights must be finite, non-negative and not all zero, got {list(weights)}")
    top = float(max(weights))  # divided by first, so that the sum cannot overflow (2 × 1e308) to inf
    total = sum(w / top for w in weights)
    return [w / top / total for w in weights]
