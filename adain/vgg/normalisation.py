"""The normalised VGG19 of Gatys et al. (CVPR 2016, Sec. 2), which the AdaIN authors trained on too.

Gatys et al. rescaled the ImageNet VGG19 "such that the mean activation of each convolutional
filter over images and positions is equal to one". Dividing filter ``o`` of layer ``l`` (its
weights and bias) by a positive ``sₗ[o]`` divides that channel of ``reluₗ`` by ``sₗ[o]``: ReLU
and max-pooling commute with positive per-channel scales. Multiplying layer ``l+1``'s input
channel ``o`` by the same ``sₗ[o]`` undoes it for the next layer, so every normalised feature map
is the raw one divided by a per-channel constant, and the forward pass costs nothing extra.

Without it the layers are far apart in scale (the raw Caffe network's relu4_1 style loss is
~170× its relu1_1's), and a loss summed over layers learns from the deepest alone.

The scales ship as ``vgg19_scales.safetensors`` beside this file (made by ``scripts/vgg_scales.py``):
one fp32 vector per layer ``relu1_1 … relu5_4``, with metadata naming the raw weights they fit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from adain.core.atomicfile import atomic_path

if TYPE_CHECKING:
    from adain.vgg.encoder import VGG19Encoder

SCALES_FILE = Path(__file__).resolve().parent / "vgg19_scales.safetensors"


class ScalesError(ValueError):
    """A scales file is unreadable, incomplete, or made for other weights."""


def filter_means(encoder: "VGG19Encoder", images: Iterable[Tensor], layers: Sequence[str]) -> dict[str, Tensor]:
    """Mean post-ReLU activation of each filter at ``layers``: over positions within an image,
    then over images (each 1×3×H×W in [0, 1], weighted equally whatever its size)."""
    sums: dict[str, Tensor] = {}
    count = 0
    with torch.inference_mode():
        for image in images:
            feats = encoder(image, layers)
            for layer in layers:
                mean = feats[layer].double().mean(dim=(0, 2, 3))
                sums[layer] = sums[layer] + mean if layer in sums else mean
            count += 1
    if not count:
        raise ValueError("no images to measure the filter means on")
    return {layer: (total / count).float() for layer, total in sums.items()}


def scales_from_means(means: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The per-filter scales: each filter's mean activation, or 1 for a filter never active
    (dividing by 0 would be undefined, and such a channel is all zeros either way)."""
    return {layer: torch.where(mean > 0, mean, torch.ones_like(mean)) for layer, mean in means.items()}


def fold_scales(convs: Sequence[tuple[Tensor, Tensor]], scales: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """Conv weights and biases whose ReLU outputs are the originals divided by ``scales``.

    ``convs[l]`` is (O×I×3×3 weight, O bias) and ``scales[l]`` its O positive scales, in
    network order. Layer ``l``'s filters are divided by ``scales[l]``, layer ``l+1``'s input
    channels multiplied by it. Returns new tensors; the inputs are left as they are.
    """
    if len(convs) != len(scales):
        raise ValueError(f"{len(scales)} scale vectors for {len(convs)} convolutions")
    folded = []
    previous: Tensor | None = None
    for (weight, bias), scale in zip(convs, scales):
        weight, bias, scale = weight.float(), bias.float(), scale.float()
        if previous is not None:
            weight = weight * previous.view(1, -1, 1, 1)
        folded.append((weight / scale.view(-1, 1, 1, 1), bias / scale))
        previous = scale
    return folded


def save_scales(path: str | os.PathLike, scales: Mapping[str, Tensor], metadata: Mapping[str, str]) -> None:
    """Write one fp32 vector per layer, with string ``metadata`` (what they were measured on)."""
    with atomic_path(Path(path)) as tmp:
        save_file({k: v.float().contiguous() for k, v in scales.items()}, tmp, metadata=dict(metadata))


def load_scales(path: str | os.PathLike, layers: Sequence[str], weights_sha256: str) -> list[Tensor]:
    """The scales of ``layers``, in that order, from a file made for the weights with ``weights_sha256``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            missing = [layer for layer in layers if layer not in f.keys()]
            if missing:
                raise ScalesError(f"{path}: no scales for {', '.join(missing)}")
            scales = [f.get_tensor(layer) for layer in layers]
    except (SafetensorError, OSError) as err:
        raise ScalesError(f"{path}: not a readable scales file ({err})") from None
    if meta.get("weights_sha256") != weights_sha256:
        raise ScalesError(f"{path}: these scales were measured for other VGG19 weights")
    if any(not bool((s > 0).all()) for s in scales):
        raise ScalesError(f"{path}: scales must be positive")
    return scales
