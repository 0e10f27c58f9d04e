"""The AdaIN decoder: a mirror of VGG19 up to relu4_1 (Huang & Belongie 2017, Sec. 6.1).

Reflection padding in every convolution (avoids border artefacts), nearest-neighbour
upsampling instead of pooling, no normalisation layers (they would undo the style
statistics AdaIN just set). Output is RGB, nominally in [0, 1] (not clamped, so the
training loss sees the raw values).
"""

from __future__ import annotations

from torch import nn

ARCH = "adain-decoder-v1"

# (in, out) channels of each 3×3 conv; "up" marks a ×2 nearest upsampling.
_LAYOUT: tuple[tuple[int, int] | str, ...] = (
    (512, 256), "up",
    (256, 256), (256, 256), (256, 256), (256, 128), "up",
    (128, 128), (128, 64), "up",
    (64, 64), (64, 3),
)  # fmt: skip


class Decoder(nn.Sequential):
    """relu4_1 features (N×512×h×w) → image (N×3×8h×8w)."""

    arch = ARCH

    def __init__(self) -> None:
        layers: list[nn.Module] = []
        for spec in _LAYOUT:
            if spec == "up":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            else:
                layers += [nn.Conv2d(*spec, kernel_size=3, padding=1, padding_mode="reflect"), nn.ReLU(inplace=True)]
        super().__init__(*layers[:-1])  # no ReLU after the last conv: the output is an image

    def conv_indices(self) -> list[int]:
        """Positions of the convolutions in this Sequential, in order."""
        return [i for i, layer in enumerate(self) if isinstance(layer, nn.Conv2d)]
