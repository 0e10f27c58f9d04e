"""Colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving color in
neural artistic style transfer"), shared by AdaIN and Gatys.

Two methods:

- ``"coral"`` (default; what the original AdaIN code's ``-preserveColor`` does): before
  stylising, the style image is recoloured by an affine map so that its RGB mean and
  covariance equal the content's. Strokes and textures stay, the palette becomes the
  photo's.
- ``"luminance"``: stylise luminance only (both images as grey, the style's luminance
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


def match_color(source: Tensor, target: Tensor) -> Tensor:
    """CORAL: ``source`` (N×3×H×W) recoloured so its RGB mean and covariance equal ``target``'s."""
    src = source.double().flatten(2)
    tgt = target.double().flatten(2)
    src_mean, tgt_mean = src.mean(2, keepdim=True), tgt.mean(2, keepdim=True)
    src_c, tgt_c = src - src_mean, tgt - tgt_mean
    src_cov = src_c @ src_c.transpose(1, 2) / src_c.shape[2]
    tgt_cov = tgt_c @ tgt_c.transpose(1, 2) / tgt_c.shape[2]
    transform = _sqrtm(tgt_cov) @ _sqrtm(src_cov, inverse=True)
    out = transform @ src_c + tgt_mean
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
    """The stylised image's luminance with the content's chrominance."""
    out = rgb_to_ycbcr(stylized)
    return ycbcr_to_rgb(torch.cat([out[:, :1], rgb_to_ycbcr(content)[:, 1:]], dim=1))


def prepare_style(style: Tensor, content: Tensor, method: str) -> Tensor:
    """The style image as the stylisation should see it under ``method``."""
    return match_color(style, content) if method == "coral" else match_luminance(style, content)


def prepare_content(content: Tensor, method: str) -> Tensor:
    """The content image as the stylisation should see it under ``method``."""
    return content if method == "coral" else grey(content)


def finish(stylized: Tensor, content: Tensor, method: str) -> Tensor:
    """The stylised output after ``method``'s last step."""
    return stylized if method == "coral" else restore_chroma(stylized, content)
