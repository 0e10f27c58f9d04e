"""The Gatys et al. (CVPR 2016) objective as pure functions of VGG19 feature maps.

Notation of the paper: a layer's features ``F`` are ``N`` channels × ``M`` positions
(``M = H·W``); ``P`` are the content image's features and ``A`` the style image's Gram
matrix at the same layer. Feature maps here are 1×N×H×W tensors (a batch is summed).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor


def gram_matrix(features: Tensor) -> Tensor:
    """``G = F·Fᵀ``, the channel correlations summed over positions (B×N×N), as in the paper."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """``½·Σ(F − P)²`` (paper eq. 1)."""
    return 0.5 * (features - target).square().sum()


def style_layer_loss(gram: Tensor, target: Tensor, positions: int) -> Tensor:
    """``E = Σ(G − A)² / (4·N²·M²)`` (paper eq. 4) for one layer with ``M = positions``."""
    channels = gram.shape[-1]
    return (gram - target).square().sum() / (4.0 * channels**2 * positions**2)


def style_target(style_features: Tensor, positions: int) -> Tensor:
    """The style image's Gram ``A`` rescaled to an output with ``positions`` positions.

    ``G`` grows with the number of positions, so a style image of another size than the
    output gets ``A·M_out/M_style``: the per-position correlations are matched. For equal
    sizes this is the paper's ``A`` exactly.
    """
    style_positions = style_features.shape[-2] * style_features.shape[-1]
    return gram_matrix(style_features) * (positions / style_positions)


def style_loss(features: Mapping[str, Tensor], targets: Mapping[str, Tensor], layer_weights: Mapping[str, float]) -> Tensor:
    """``Σₗ wₗ·Eₗ`` over the layers in ``layer_weights`` (paper eq. 5)."""
    return sum(
        weight * style_layer_loss(gram_matrix(features[layer]), targets[layer], features[layer][0, 0].numel())
        for layer, weight in layer_weights.items()
    )


def tv_loss(image: Tensor) -> Tensor:
    """Total variation: the sum of squared differences between neighbouring pixels (a smoothness prior)."""
    return (image[..., 1:, :] - image[..., :-1, :]).square().sum() + (image[..., 1:] - image[..., :-1]).square().sum()
