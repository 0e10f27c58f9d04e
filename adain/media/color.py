"""Colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving color in
neural artistic style transfer"), shared by AdaIN and Gatys.

Two methods:

- ``"coral"`` (default; what the original AdaIN code's ``-preserveColor`` does): before
  stylizing, the style image is recoloured by an affine map so that its RGB mean and
  covariance equal the content's. Strokes and textures stay, the palette becomes the
  photo's.
- ``"luminance"``: stylize luminance only (both images as grey, the style's luminance
  matched to the content's mean and std), then put the content's chrominance (YCbCr)
  back. Keeps the content's colours exactly; the style's colour texture is lost.
"""

from __future__ import annotations

import torch
from torch import Tensor

_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)


def _sqrtm(cov: Tensor, inverse: bool = False, eps: float = 1e-5) -> Tensor:
    """Symmetric (inverse) square root of a batch of 3×3 covariance matrices."""
    values, vectors = torch.linalg.eigh(cov + eps * torch.eye(3, dtype=cov.dtype, device=cov.device))
    values = values.clamp_min(eps).sqrt()
    if inverse:
        values = values.reciprocal()
    return vectors @ torch.diag_embed(values) @ vectors.transpose(-1, -2)


BAND = 1 << 16  # pixels summed at a time by :func:`mean_cov` (1.5 MB in float64)


def mean_cov(image: Tensor) -> tuple[Tensor, Tensor]:
    """RGB mean (N×3×1) and covariance (N×3×3) of N×3×H×W images, in float64, summed a band of rows
    at a time: a float64 copy of a large content (24 bytes per pixel) would break the tiled path's memory bound."""
    total = image.new_zeros(image.shape[0], 3, 1, dtype=torch.float64)
    products = image.new_zeros(image.shape[0], 3, 3, dtype=torch.float64)
    for rows in image.split(max(1, BAND // image.shape[-1]), dim=2):
        band = rows.double().flatten(2)
        total += band.sum(2, keepdim=True)
        products += band @ band.transpose(1, 2)
    mean = total / image[0, 0].numel()
    return mean, products / image[0, 0].numel() - mean @ mean.transpose(1, 2)


def match_color(source: Tensor, target: Tensor) -> Tensor:
    """CORAL: ``source`` (N×3×H×W) recoloured so its RGB mean and covariance equal ``target``'s."""
    (src_mean, src_cov), (tgt_mean, tgt_cov) = mean_cov(source), mean_cov(target)
    transform = _sqrtm(tgt_cov) @ _sqrtm(src_cov, inverse=True)
    out = transform @ (source.double().flatten(2) - src_mean) + tgt_mean
    return out.reshape(source.shape).clamp(0, 1).to(source.dtype)


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """N×3×H×W RGB in [0, 1] → YCbCr (Y in [0, 1], Cb/Cr centred on 0)."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YCBCR.to(rgb), rgb)


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr`, clamped to [0, 1]."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YCBCR).to(ycbcr), ycbcr).clamp(0, 1)


def luminance(rgb: Tensor) -> Tensor:
    """N×3×H×W RGB → N×1×H×W luminance (the Y of :func:`rgb_to_ycbcr`), with no 3-channel temporary."""
    return torch.einsum("j,njhw->nhw", _RGB_TO_YCBCR[0].to(rgb), rgb)[:, None]


def grey(rgb: Tensor) -> Tensor:
    """Luminance replicated to three channels."""
    return luminance(rgb).expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """The style's luminance (as a grey 3-channel image) with the content's luminance mean and std."""
    s, c = rgb_to_ycbcr(style)[:, :1], rgb_to_ycbcr(content)[:, :1]
    s = (s - s.mean(dim=(2, 3), keepdim=True)) / (s.std(dim=(2, 3), keepdim=True) + 1e-5)
    s = s * c.std(dim=(2, 3), keepdim=True) + c.mean(dim=(2, 3), keepdim=True)
    return s.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def restore_chroma(stylized: Tensor, content: Tensor) -> Tensor:
    """The stylized image's luminance with the content's chrominance: the content plus the change in
    luminance on each channel (YCbCr → RGB maps a change of Y alone to the same change of R, G and B),
    so that the only full-size buffers made are the result and two luminance planes."""
    shift = luminance(stylized).sub_(luminance(content))
    return (content + shift).clamp_(0, 1)


def prepare_style(style: Tensor, content: Tensor, method: str) -> Tensor:
    """The style image as the stylization should see it under ``method``."""
    return match_color(style, content) if method == "coral" else match_luminance(style, content)


def prepare_content(content: Tensor, method: str) -> Tensor:
    """The content image as the stylization should see it under ``method``."""
    return content if method == "coral" else grey(content)


def finish(stylized: Tensor, content: Tensor, method: str) -> Tensor:
    """The stylized output after ``method``'s last step."""
    return stylized if method == "coral" else restore_chroma(stylized, content)
