"""Guided upsampling: a low-resolution result carried up to the sharpness of a full-resolution guide.

The fast guided filter (He & Sun, "Fast Guided Filter", arXiv:1505.00996, 2015), built on the
guided filter (He, Sun & Tang, ECCV 2010): at low resolution, fit in every (2r+1)² window a
linear map from the guide's luminance to each channel of the result, ``q = a·I + b``; average
``a`` and ``b`` over the windows, upsample them bilinearly, and apply them to the
full-resolution guide. Edges and fine detail come from the guide; colours, strokes and textures
at the low resolution's scale come from the result. Stylizing at 512 px and upsampling this way
keeps the brush strokes of the 512-px result on a 4K output, where stylizing at 4K makes them
an eighth as large (docs/large-images.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from adain.media.color import luminance

RADIUS = 1  # low-resolution pixels: 3×3 windows, so the result's detail at its own scale survives
EPS = 1e-3  # regularises a; a guide flatter than √EPS ≈ 0.03 in a window takes the result as it is


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean over the (2·radius+1)² window around each pixel, over the pixels inside the image."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_upsample(low: Tensor, low_guide: Tensor, guide: Tensor, radius: int = RADIUS, eps: float = EPS) -> Tensor:
    """``low`` (N×C×h×w, the result at low resolution) → N×C×H×W, the size of ``guide`` (N×3×H×W
    RGB), given ``low_guide``, the guide at ``low``'s size. Everything in [0, 1]. The output is
    made a channel at a time, so the only full-size buffers are the guide's luminance and the result.
    """
    small = luminance(low_guide)
    mean_i, mean_p = box_mean(small, radius), box_mean(low, radius)
    var_i = box_mean(small * small, radius) - mean_i * mean_i
    a = (box_mean(small * low, radius) - mean_i * mean_p) / (var_i + eps)
    a, b = box_mean(a, radius), box_mean(mean_p - a * mean_i, radius)
    big, size = luminance(guide), guide.shape[-2:]
    out = torch.empty((low.shape[0], low.shape[1], *size), dtype=guide.dtype, device=guide.device)
    for c in range(low.shape[1]):
        up = [F.interpolate(v[:, c : c + 1], size=size, mode="bilinear", align_corners=False) for v in (a, b)]
        torch.addcmul(up[1], up[0], big, out=out[:, c : c + 1])
    return out.clamp_(0, 1)
