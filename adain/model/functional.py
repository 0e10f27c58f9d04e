"""Adaptive instance normalisation and the feature statistics it is built from, as pure functions.

Statistics are per sample and per channel over the spatial positions, computed in fp32
with the population variance and ``eps`` inside the square root:
``std = sqrt(var + eps)``. With that definition the output of :func:`adain` has
exactly the style's channel means and (up to ``eps``) standard deviations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from adain.core.checks import normalise_weights

EPS = 1e-5


def mean_std(feat: Tensor, eps: float = EPS, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Channel mean and std of an N×C×H×W map, each N×C×1×1, optionally weighted.

    ``weight`` (N×1×H×W, ≥ 0) restricts the statistics to a soft region: a binary mask
    gives the exact statistics of the masked positions.
    """
    feat = feat.float()
    if weight is None:
        var, mean = torch.var_mean(feat, dim=(2, 3), keepdim=True, correction=0)
        return mean, (var + eps).sqrt()
    weight = weight.float()
    total = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    mean = (feat * weight).sum(dim=(2, 3), keepdim=True) / total
    var = ((feat - mean).square() * weight).sum(dim=(2, 3), keepdim=True) / total
    return mean, (var + eps).sqrt()


def moment_sums(feat: Tensor, weight: Tensor | None = None) -> Tensor:
    """Partial sums ``(Σw, Σw·x, Σw·x²)`` per sample and channel, stacked (3×N×C×1×1, float64).

    Sums of parts add up to the sums of the whole, so a map seen in tiles gets the statistics
    of the whole map from :func:`stats_from_sums` (tiled AdaIN)."""
    feat = feat.double()
    w = torch.ones_like(feat[:, :1]) if weight is None else weight.double()
    count = w.sum(dim=(2, 3), keepdim=True).expand(*feat.shape[:2], 1, 1)
    return torch.stack([count, (feat * w).sum(dim=(2, 3), keepdim=True), (feat.square() * w).sum(dim=(2, 3), keepdim=True)])


def stats_from_sums(sums: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Channel mean and std (as :func:`mean_std`) from :func:`moment_sums`."""
    total = sums[0].clamp_min(1e-8)
    mean = sums[1] / total
    var = (sums[2] / total - mean.square()).clamp_min(0)
    return mean.float(), (var + eps).sqrt().float()


def adain_from_stats(
    content: Tensor,
    style_mean: Tensor,
    style_std: Tensor,
    eps: float = EPS,
    weight: Tensor | None = None,
    content_stats: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """``σ_s · (x − μ_c) / σ_c + μ_s``: content features renormalised to given style statistics.

    ``weight`` restricts the *content* statistics to a region (spatial control);
    ``content_stats`` gives them instead (those of a whole image seen in tiles).
    """
    mean, std = content_stats if content_stats is not None else mean_std(content, eps, weight)
    return ((content.float() - mean) / std * style_std + style_mean).to(content.dtype)


def adain(content: Tensor, style: Tensor, eps: float = EPS) -> Tensor:
    """AdaIN(x, y) of Huang & Belongie (2017): content features with the style's channel statistics."""
    return adain_from_stats(content, *mean_std(style, eps), eps=eps)


def blend_targets(
    content: Tensor,
    style_stats: Sequence[tuple[Tensor, Tensor]],
    weights: Sequence[float] | None = None,
    mask: Tensor | None = None,
    alpha: float = 1.0,
    eps: float = EPS,
    content_stats: Sequence[tuple[Tensor, Tensor]] | None = None,
) -> Tensor:
    """The decoder's input for one or several styles.

    - several styles: ``Σ wᵢ · AdaIN(f(c), f(sᵢ))`` with ``w`` normalised to sum 1 (equal if None);
    - ``mask`` (N×1×h×w in [0, 1]): exactly two styles (checked by the callers:
      :func:`~adain.core.checks.check_styles`). The mask is resized to the feature
      size and thresholded at 0.5; the first style goes where it is white, the second where it
      is black, each region normalised with its own content statistics (the paper's spatial
      control, as in the original AdaIN code);
    - then the style-strength blend ``(1 − α) · f(c) + α · t``.

    ``content_stats`` replaces the content statistics taken from ``content``: one (mean, std),
    or with a mask those of the white and of the black region (a tile's, from the whole image).
    """
    if mask is not None:
        m = resize_mask(mask, content.shape[-2:])
        inside, outside = content_stats if content_stats is not None else (None, None)
        target = m * adain_from_stats(content, *style_stats[0], eps, m, inside) + (1 - m) * adain_from_stats(
            content, *style_stats[1], eps, 1 - m, outside
        )
    else:
        w = normalise_weights(weights, len(style_stats))
        whole = content_stats[0] if content_stats is not None else None
        target = sum(wi * adain_from_stats(content, *stats, eps, None, whole) for wi, stats in zip(w, style_stats))
    return alpha * target + (1 - alpha) * content


def mask_from_rgb(rgb: Tensor) -> Tensor:
    """An N×1×H×W mask from an N×3×H×W image in [0, 1]: the mean of its channels (white → 1,
    black → 0). The one conversion of every path (Python API, command line, app)."""
    return rgb.mean(dim=1, keepdim=True)


MASK_ASPECT_TOLERANCE = 0.02  # resizing and rounding change an aspect ratio by far less


def check_mask_shape(mask_size: Sequence[int], content_size: Sequence[int]) -> None:
    """ValueError unless a mask of ``mask_size`` (height, width) has the content's aspect ratio:
    a mask is resized to the content, and one of another shape would be stretched silently."""
    (mh, mw), (ch, cw) = mask_size, content_size
    if abs((mw / mh) / (cw / ch) - 1) > MASK_ASPECT_TOLERANCE:
        raise ValueError(
            f"the mask is {mw}×{mh} px and the content {cw}×{ch} px: their aspect ratios differ "
            f"({mw / mh:.2f} against {cw / ch:.2f}); give a mask shaped like the content"
        )


def resize_mask(mask: Tensor, size: Sequence[int]) -> Tensor:
    """A binary N×1×h×w mask at ``size``: area-averaged, then thresholded at 0.5."""
    resized = torch.nn.functional.interpolate(mask.float(), size=tuple(size), mode="area")
    return (resized > 0.5).float()
