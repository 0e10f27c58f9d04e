"""The AdaIN network as two ONNX graphs, so that a style is encoded once and any runtime that reads
ONNX (ONNX Runtime, OpenVINO, a browser) can stylize without PyTorch.

- ``style.onnx``: ``style`` (N×3×H×W, RGB in [0, 1]) → ``mean``, ``std`` (N×512×1×1): the style's
  relu4_1 statistics (a :class:`~adain.model.style_transfer.StyleCode`).
- ``stylize.onnx``: ``content`` (1×3×H×W), ``mean``, ``std``, ``alpha`` (a scalar in [0, 1]) →
  ``image`` (1×3×H×W in [0, 1]): padded to a multiple of 8 inside, AdaIN, the α blend, decoded.

Both take any image size (H and W at least 16): the sizes are symbolic in the graphs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adain.model.decoder import Decoder
from adain.model.functional import adain_from_stats, mean_std
from adain.model.style_transfer import MIN_NETWORK_SIDE, StyleTransfer
from adain.vgg.encoder import VGG19Encoder

FILES = ("style.onnx", "stylize.onnx")


class StyleGraph(nn.Module):
    """style → (mean, std) of its relu4_1 features."""

    def __init__(self, encoder: VGG19Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, style: Tensor) -> tuple[Tensor, Tensor]:
        return mean_std(self.encoder(style)["relu4_1"])


class StylizeGraph(nn.Module):
    """(content, mean, std, alpha) → the stylized image, as :meth:`StyleTransfer.forward` computes it."""

    def __init__(self, encoder: VGG19Encoder, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, content: Tensor, mean: Tensor, std: Tensor, alpha: Tensor) -> Tensor:
        h, w = content.shape[-2], content.shape[-1]
        x = F.pad(content, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="replicate")
        features = self.encoder(x)["relu4_1"]
        target = alpha * adain_from_stats(features, mean, std) + (1 - alpha) * features
        return self.decoder(target)[..., :h, :w].clamp(0, 1)


def export_onnx(model: StyleTransfer, folder: str | Path) -> list[Path]:
    """Write :data:`FILES` for ``model``'s encoder and decoder (fp32 copies, on the CPU) into
    ``folder``; their paths. The model itself is left as it is."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder, decoder = (copy.deepcopy(part).cpu().float().eval() for part in (model.encoder, model.decoder))
    side = torch.export.Dim("height", min=MIN_NETWORK_SIDE), torch.export.Dim("width", min=MIN_NETWORK_SIDE)
    sizes = {2: side[0], 3: side[1]}
    example = torch.rand(1, 3, 67, 93)  # odd sizes: the graphs must not fix any
    style_graph, stylize_graph = StyleGraph(encoder).eval(), StylizeGraph(encoder, decoder).eval()
    paths = [folder / name for name in FILES]
    with torch.no_grad():
        mean, std = style_graph(example)
        torch.onnx.export(
            style_graph, (example,), paths[0], input_names=["style"], output_names=["mean", "std"],
            dynamic_shapes={"style": sizes}, dynamo=True, verbose=False,
        )  # fmt: skip
        torch.onnx.export(
            stylize_graph, (example, mean, std, torch.tensor(1.0)), paths[1],
            input_names=["content", "mean", "std", "alpha"], output_names=["image"],
            dynamic_shapes={"content": sizes, "mean": None, "std": None, "alpha": None}, dynamo=True, verbose=False,
        )  # fmt: skip
    return paths
