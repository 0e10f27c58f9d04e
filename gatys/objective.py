"""The weighted Gatys objective of one content and one or more style images, on the shared encoder."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from adain.core.device import DTYPES
from adain.vgg.encoder import VGG19Encoder

from .losses import content_loss, style_loss, style_target, tv_loss


class GatysObjective:
    """``content_weight·content + style_weight·Σₛ wₛ·styleₛ + tv_weight·tv`` of an image.

    The content features and the style Gram matrices are computed once, here; each call
    runs the encoder only up to the deepest layer in use. ``precision="bf16"``: the encoder's
    forward and backward passes run on a bf16 copy of it (one dtype, no autocast casts); the
    features are taken back to fp32, so the Gram matrices and the losses are fp32.
    """

    def __init__(
        self,
        encoder: VGG19Encoder,
        content: Tensor,
        styles: Sequence[Tensor],
        style_weights: Sequence[float],
        *,
        content_layer: str,
        layer_weights: Mapping[str, float],
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        precision: str = "fp32",
    ):
        self.encoder = encoder
        self.dtype = DTYPES[precision]
        self.network = encoder if precision == "fp32" else copy.deepcopy(encoder).to(self.dtype)
        self.content_layer = content_layer
        self.layer_weights = dict(layer_weights)
        self.layers = {content_layer, *self.layer_weights}
        self.style_weights = list(style_weights)
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        with torch.no_grad():
            feats = self.features(content, self.layers)
            self.content_target = feats[content_layer]
            positions = {layer: feats[layer][0, 0].numel() for layer in self.layer_weights}
            self.style_targets = []
            for style in styles:
                style_feats = self.features(style, self.layer_weights)
                self.style_targets.append({k: style_target(style_feats[k], m) for k, m in positions.items()})

    def features(self, image: Tensor, layers: set[str] | Mapping[str, float]) -> dict[str, Tensor]:
        """The encoder's fp32 features of an fp32 image at ``layers``, computed in the precision's dtype."""
        feats = self.network(image.to(self.dtype), layers)
        return {layer: f.float() for layer, f in feats.items()}

    def __call__(self, image: Tensor) -> dict[str, Tensor]:
        """The unweighted ``content``, ``style`` (blended over styles) and ``tv`` terms, and the weighted ``total``."""
        feats = self.features(image, self.layers)
        content = content_loss(feats[self.content_layer], self.content_target)
        style = sum(
            w * style_loss(feats, targets, self.layer_weights) for w, targets in zip(self.style_weights, self.style_targets)
        )
        tv = tv_loss(image) if self.tv_weight else image.new_zeros(())
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return {"content": content, "style": style, "tv": tv, "total": total}
