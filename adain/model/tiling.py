"""Stylizing an image larger than the network should see at once, in tiles that join without seams.

A tile's output depends only on pixels within :data:`TILE_HALO` of it, and AdaIN's content
statistics are those of the whole image (added up from every tile's moments), so the tiled
result equals the untiled one up to float rounding while only one tile is in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from adain.model.functional import blend_targets, moment_sums, resize_mask, stats_from_sums

# Context around each tile (px, a multiple of 8). An output pixel depends on relu4_1 cells about 32 px
# away (the decoder's 3×3 convolutions and upsamplings) and each of those on pixels about 34 px away
# (VGG19 to relu4_1). Measured on a photo, 64-px tiles, the largest difference from the untiled
# result: 1.8e-3 with 16 px, 4.9e-4 with 32, 3.7e-5 with 48, 2.0e-6 with 56, 6e-8 (float rounding) with 64.
TILE_HALO = 64
Span = tuple[int, int, int, int]


def tile_spans(length: int, tile: int) -> list[Span]:
    """How a side of ``length`` px (a multiple of 8) is cut into tiles of at most ``tile``:
    (core start, core end, window start, window end) per tile. The cores are as equal as
    multiples of 8 allow and every window is the core plus :data:`TILE_HALO` on each side, moved
    inwards at the image's edges, so all windows have one size: memory freed by one tile is
    reused by the next rather than fragmented."""
    count = -(-length // tile)
    core = -(-length // (count * 8)) * 8
    window = min(length, core + 2 * TILE_HALO)
    spans = []
    for start in range(0, length, core):
        first = min(max(start - TILE_HALO, 0), length - window)
        spans.append((start, min(start + core, length), first, first + window))
    return spans


Box = tuple[int, int, int, int]  # top, left, bottom, right


def _tile_features(content: Tensor, rows: Span, cols: Span, encode: Callable[[Tensor], Tensor]) -> tuple[Tensor, Box, Box]:
    """A tile's relu4_1 with its margin, the margin's box in the image, and the core's box inside
    the margin (both in relu4_1 cells, ÷ 8). Windows past the content's edge (the padding of the
    whole image to a multiple of 8) are padded here, for this tile only."""
    h, w = content.shape[-2:]
    (top, bottom, t0, b0), (left, right, l0, r0) = rows, cols
    x = content[..., t0 : min(b0, h), l0 : min(r0, w)]
    if (b0, r0) != (min(b0, h), min(r0, w)):
        x = F.pad(x, (0, r0 - min(r0, w), 0, b0 - min(b0, h)), mode="replicate")
    box = (t0 // 8, l0 // 8, b0 // 8, r0 // 8)
    return encode(x), box, ((top - t0) // 8, (left - l0) // 8, (bottom - t0) // 8, (right - l0) // 8)


def stylize_tiled(
    content: Tensor,
    padded: tuple[int, int],
    tile: int,
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    style_stats: list[tuple[Tensor, Tensor]],
    weights: Sequence[float] | None = None,
    mask: Tensor | None = None,
    alpha: float = 1.0,
) -> Tensor:
    """AdaIN of ``content`` (its size a multiple of 8 once padded to ``padded``) in ``tile`` × ``tile``
    pieces, in two passes; ``encode`` gives relu4_1, ``decode`` an image, ``mask`` is at ``padded``.

    Pass 1 encodes each tile with its margin and adds up its core's relu4_1 moments (per region
    under a mask), giving the content statistics of the whole image. Pass 2 encodes each tile
    again, applies AdaIN with those statistics, decodes, and keeps the core. Only tiles are ever
    padded and the output is made at the content's size, so the one full-size buffer besides the
    content is the result.
    """
    h, w = content.shape[-2:]
    ph, pw = padded
    m = None if mask is None else resize_mask(mask, (ph // 8, pw // 8))  # as blend_targets would
    cores = [(rows, cols) for rows in tile_spans(ph, tile) for cols in tile_spans(pw, tile)]

    regions = [None] if m is None else [m, 1 - m]
    sums = [torch.zeros(()) for _ in regions]
    for rows, cols in cores:
        feat, box, (ct, cl, cb, cr) = _tile_features(content, rows, cols, encode)
        core = feat[..., ct:cb, cl:cr]
        for i, region in enumerate(regions):
            weight = None if region is None else region[..., box[0] + ct : box[0] + cb, box[1] + cl : box[1] + cr]
            sums[i] = sums[i] + moment_sums(core, weight).cpu()
    content_stats = [tuple(s.to(content.device) for s in stats_from_sums(total)) for total in sums]

    out = torch.empty(content.shape, dtype=torch.float32, device=content.device)
    for rows, cols in cores:
        feat, (t0, l0, b0, r0), (ct, cl, cb, cr) = _tile_features(content, rows, cols, encode)
        tile_mask = None if m is None else m[..., t0:b0, l0:r0]
        decoded = decode(blend_targets(feat, style_stats, weights, tile_mask, alpha, content_stats=content_stats))
        (top, bottom), (left, right) = (rows[0], min(rows[1], h)), (cols[0], min(cols[1], w))  # less the padding
        out[..., top:bottom, left:right] = decoded[..., ct * 8 : ct * 8 + bottom - top, cl * 8 : cl * 8 + right - left]
    return out.clamp_(0, 1)
