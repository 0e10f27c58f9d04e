"""The AdaIN training losses (Huang & Belongie 2017, Sec. 5), as pure functions.

- content: MSE between the encoder's relu4_1 features of the decoded image g(t) and the
  AdaIN target t itself (not the content image's features), which makes training converge
  faster and matches the decoder's job of inverting t;
- style: for each of relu1_1, relu2_1, relu3_1 and relu4_1, MSE between the channel means
  of g(t) and of the style image plus MSE between their channel standard deviations
  (:func:`adain.model.functional.mean_std`, the statistics AdaIN itself transfers).

All MSEs are means over their elements (batch and channels), as in pytorch-AdaIN.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor

from adain.model.functional import mean_std

CONTENT_LAYER = "relu4_1"
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def content_loss(output_features: Tensor, target: Tensor) -> Tensor:
    """MSE between relu4_1 of the decoded image and the AdaIN target ``t`` (computed in fp32)."""
    return F.mse_loss(output_features.float(), target.float())


def style_loss(output_features: Mapping[str, Tensor], style_features: Mapping[str, Tensor]) -> Tensor:
    """Σ over :data:`STYLE_LAYERS` of MSE(mean) + MSE(std) between output and style features."""
    return sum(style_losses(output_features, style_features).values())  # type: ignore[return-value]


def style_losses(output_features: Mapping[str, Tensor], style_features: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The style loss's term at each of :data:`STYLE_LAYERS` (what each layer contributes)."""
    return {layer: statistics_mse(output_features[layer], style_features[layer]) for layer in STYLE_LAYERS}


def statistics_mse(output: Tensor, style: Tensor) -> Tensor:
    """MSE(mean) + MSE(std) between the channel statistics of two N×C×H×W feature maps."""
    out_mean, out_std = mean_std(output)
    style_mean, style_std = mean_std(style)
    return F.mse_loss(out_mean, style_mean) + F.mse_loss(out_std, style_std)
