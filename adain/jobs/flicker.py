"""Temporal stabilisation of stylized video: where a frame has not changed, keep the last output.

Stylizing each frame on its own makes video flicker: a pixel whose input did not move still gets
a slightly different stroke every frame, because the features around it (and AdaIN's statistics
of the whole frame) moved a little, and the decoder amplifies that. This blends each output with
the previous (already blended) one, per pixel, by how still the *input* is there:

    w = strength · exp(−(Δ / τ)²),   out_t = w · out_{t−1} + (1 − w) · stylized_t

with Δ the largest channel change of the input pixel since the last frame. Where the input is
still (Δ ≪ τ) the output settles to an average over about 1 / (1 − strength) frames; where it
moved (Δ ≫ τ) the new stylization is taken as it is, so moving things leave no trails. This is
the change-masked form of the short-term temporal consistency of Ruder, Dosovitskiy & Brox
("Artistic style transfer for videos", GCPR 2016), who warp the previous output with optical
flow and mask disocclusions; without flow, a moving camera (where every pixel changes) is
left as it is.
"""

from __future__ import annotations

import torch
from torch import Tensor

STILLNESS = 0.03  # τ: an input change of 1/3 of τ (2.5 levels of 255) keeps 90 % of the weight; τ itself 37 %


def blend_weight(frame: Tensor, previous: Tensor, strength: float, stillness: float = STILLNESS) -> Tensor:
    """Per-pixel weight (N×1×H×W) of the previous output, from how much the input changed."""
    change = (frame - previous).abs().amax(dim=1, keepdim=True)
    return strength * torch.exp(-((change / stillness) ** 2))


class Stabiliser:
    """Blends a clip's stylized frames, batch after batch, with the output before them."""

    def __init__(self, strength: float, stillness: float = STILLNESS):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {strength}")
        self.strength, self.stillness = strength, stillness
        self.last: tuple[Tensor, Tensor] | None = None  # the previous input frame and output (1×3×H×W)

    def __call__(self, frames: Tensor, stylized: Tensor) -> Tensor:
        """N input frames and their stylizations (N×3×H×W, in order) → the stabilised outputs."""
        if self.strength == 0.0:
            return stylized
        out = stylized.clone()
        for t in range(len(frames)):
            if self.last is not None:
                previous_frame, previous_out = self.last
                w = blend_weight(frames[t : t + 1], previous_frame, self.strength, self.stillness)
                out[t : t + 1] = torch.lerp(out[t : t + 1], previous_out, w)
            self.last = (frames[t : t + 1], out[t : t + 1])
        return out
