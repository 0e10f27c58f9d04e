"""Fast arbitrary style transfer: encoder → AdaIN → decoder, and the user-facing API.

    from adain import StyleTransfer
    st = StyleTransfer.load()                       # shipped decoder, normalised VGG19, best device
    out = st.stylize(photo, painting, alpha=0.8)    # PIL in, PIL out (or tensors in, tensors out)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from adain.core.allocator import keep_freed_memory
from adain.core.checks import check_stylize
from adain.core.device import DTYPES, resolve_device, resolve_precision
from adain.core.options import COMPILE_MODES, DEFAULT_VGG
from adain.core.shipped import shipped
from adain.media import color
from adain.media.guided_filter import guided_upsample
from adain.media.image_io import pil_to_tensor, resize, target_size, tensor_to_pil
from adain.model.decoder import Decoder
from adain.model.decoder_file import load_decoder
from adain.model.functional import blend_targets, check_mask_shape, mask_from_rgb, mean_std
from adain.model.tiling import stylize_tiled
from adain.vgg.encoder import VGG19Encoder

DEFAULT_DECODER = shipped("checkpoints") / "decoder.safetensors"
MIN_NETWORK_SIDE = 16  # smallest padded input: relu4_1 is then 2×2, enough for the decoder's reflection padding
ImageLike = Union[Image.Image, Tensor]


class NoDecoderError(FileNotFoundError):
    """No decoder file was given and none is bundled."""


@dataclass(frozen=True)
class StyleCode:
    """An encoded style: channel mean and std of its relu4_1 features (each 1×512×1×1).

    AdaIN needs nothing else from a style, so one code serves any number of contents.
    """

    mean: Tensor
    std: Tensor


class StyleTransfer(nn.Module):
    """A frozen VGG19 encoder and a decoder, with AdaIN in between.

    ``precision`` ``"fp16"``/``"bf16"``: the network runs on copies of both whose weights are of
    that type, so activations keep one dtype from the image to the output, and only AdaIN's
    statistics are taken in fp32 (:mod:`adain.model.functional`). Autocast would instead cast every
    weight, and activations around the ops it keeps in fp32, on every call: on an H100 that made
    bf16 slower than fp32 (see docs/benchmarks/README.md). ``encoder`` and ``decoder`` stay fp32, so
    an encoder shared with Gatys or the metrics is not changed.

    ``compile`` (one of :data:`~adain.core.options.COMPILE_MODES`): the encoder and the decoder each run
    as one ``torch.compile``d graph, so padding, ReLU and casts fuse into their neighbours; each new
    input size costs a compilation (on this project's CPU it was not worth it, see docs/benchmarks/README.md).
    """

    def __init__(self, encoder: VGG19Encoder, decoder: Decoder, precision: str = "fp32", compile: str | None = None):
        super().__init__()
        if precision not in DTYPES:
            raise ValueError(f"precision must be one of {sorted(DTYPES)}")
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {compile!r}")
        self.encoder = encoder
        self.decoder = decoder.eval().requires_grad_(False)
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.reduced = None
        if precision != "fp32":
            copies = {"encoder": copy.deepcopy(encoder), "decoder": copy.deepcopy(self.decoder)}
            self.reduced = nn.ModuleDict(copies).to(self.dtype)
        self.compile_mode = compile
        if compile is not None:  # instance attributes in front of the eager methods
            self._relu4_1 = torch.compile(self._relu4_1, mode=compile, fullgraph=True, dynamic=False)
            self._decode = torch.compile(self._decode, mode=compile, fullgraph=True, dynamic=False)

    @classmethod
    def load(
        cls,
        decoder: str | os.PathLike | None = None,
        vgg: str | os.PathLike = DEFAULT_VGG,
        device: str | torch.device = "auto",
        precision: str = "auto",
        compile: str | None = None,
    ) -> "StyleTransfer":
        """Build from a decoder file (``None``: the bundled one) and a VGG19 weight source, in
        ``precision`` (``auto``: :func:`~adain.core.device.auto_precision` for the device).

        On the CPU this also makes the process keep freed memory for reuse
        (:func:`adain.core.allocator.keep_freed_memory`), which speeds up every large tensor.
        """
        path = Path(decoder) if decoder is not None else DEFAULT_DECODER
        if decoder is None and not path.is_file():
            raise NoDecoderError(
                f"no decoder is bundled ({path} is missing: a checkout without it, or a broken install); "
                "pass --decoder FILE (train one with train.py, or use pytorch-AdaIN's decoder.pth with --vgg vgg_normalised.pth)"
            )
        target = resolve_device(device)
        precision = resolve_precision(precision, target)
        if target.type == "cpu":
            keep_freed_memory()
        encoder = VGG19Encoder.load(vgg)
        dec, _ = load_decoder(path, encoder.identity, encoder.layout)
        return cls(encoder, dec, precision, compile).to(target)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.encoder.preprocess.weight.device

    def _fast_layout(self, images: Tensor) -> Tensor:
        """Channels-last on the CPU and CUDA, where oneDNN's and cuDNN's fastest kernels want it
        (on the CPU: convolutions ~1.3× and max-pooling ~15× faster, see docs/benchmarks/README.md)."""
        if self.device.type in ("cpu", "cuda"):
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def _relu4_1(self, images: Tensor) -> Tensor:
        """relu4_1 features of N×3×H×W images in [0, 1], in the precision's dtype."""
        encoder = self.encoder if self.reduced is None else self.reduced["encoder"]
        return encoder(self._fast_layout(images.to(self.dtype)), ["relu4_1"])["relu4_1"]

    def _decode(self, target: Tensor) -> Tensor:
        """The decoder on AdaIN's output (cast to the precision's dtype); on the CPU with its
        upsamplings folded into the convolutions (:meth:`Decoder.forward_folded`)."""
        decoder = self.decoder if self.reduced is None else self.reduced["decoder"]
        target = target.to(self.dtype)
        return decoder.forward_folded(target) if self.device.type == "cpu" else decoder(target)

    @torch.inference_mode()
    def encode_style(self, style: ImageLike) -> StyleCode:
        """Encode a style image once; reuse the code for many contents.

        Styles smaller than 16 px are upscaled first: VGG19 pools them away otherwise.
        """
        image = _as_batch(style).to(self.device)
        if image.shape[0] != 1:  # its code would hold several styles, and a content would take the first
            raise ValueError(f"a style is one image, got a batch of {image.shape[0]}; give several styles as a list")
        if min(image.shape[-2:]) < MIN_NETWORK_SIDE:
            h, w = image.shape[-2:]
            side = MIN_NETWORK_SIDE
            image = resize(image, (max(side, h * side // min(h, w)), max(side, w * side // min(h, w))))
        return StyleCode(*mean_std(self._relu4_1(image)))

    @torch.inference_mode()
    def forward(
        self,
        content: Tensor,
        styles: Sequence[StyleCode],
        weights: Sequence[float] | None = None,
        mask: Tensor | None = None,
        alpha: float = 1.0,
        tile: int | None = None,
    ) -> Tensor:
        """N×3×H×W content in [0, 1] → N×3×H×W stylized image in [0, 1], the same size.

        The content is padded (edge replication) to a multiple of 8 so that the decoder's
        ×8 upsampling lands back on it, and the padding is cropped off the output. Speed (see
        docs/benchmarks/README.md): channels-last activations, and on the CPU the decoder's upsamplings
        folded into its convolutions (:meth:`Decoder.forward_folded`).

        ``tile`` (as :func:`~adain.core.checks.check_max_tile` allows; None or 0: never): an image of more
        than ``tile``² pixels is worked on in pieces of at most ``tile``×``tile``, each with a margin of
        :data:`~adain.model.tiling.TILE_HALO` pixels of context, and AdaIN's content statistics taken over the whole
        image, so memory follows the tile, not the image, and the result equals the untiled one
        (:func:`~adain.model.tiling.stylize_tiled`).
        """
        check_stylize(alpha, len(styles), weights, mask is not None, None, tile or 0, 0)
        if mask is not None:
            _check_mask(mask, content)
        return self._transfer(content, styles, weights, mask, alpha, tile)

    def _transfer(
        self, content: Tensor, styles: Sequence[StyleCode], weights: Sequence[float] | None, mask: Tensor | None, alpha: float,
        tile: int | None,
    ) -> Tensor:  # fmt: skip
        """:meth:`forward` on checked arguments."""
        content = content.to(self.device)
        h, w = content.shape[-2:]
        ph, pw = max(MIN_NETWORK_SIDE, -(-h // 8) * 8), max(MIN_NETWORK_SIDE, -(-w // 8) * 8)
        if mask is not None:
            mask = F.interpolate(mask.to(self.device).float(), size=(h, w), mode="bilinear", align_corners=False)
            mask = F.pad(mask, (0, pw - w, 0, ph - h), mode="replicate")
        style_stats = [(s.mean.to(self.device), s.std.to(self.device)) for s in styles]  # a code made on another device
        if tile and ph * pw > tile * tile:
            return stylize_tiled(content, (ph, pw), tile, self._relu4_1, self._decode, style_stats, weights, mask, alpha)
        x = F.pad(content, (0, pw - w, 0, ph - h), mode="replicate") if (ph, pw) != (h, w) else content
        out = self._decode(blend_targets(self._relu4_1(x), style_stats, weights, mask, alpha))
        return out[..., :h, :w].float().clamp(0, 1).contiguous()

    def stylize(
        self,
        content: ImageLike,
        style_or_styles: ImageLike | StyleCode | Sequence[ImageLike | StyleCode],
        alpha: float = 1.0,
        style_weights: Sequence[float] | None = None,
        mask: ImageLike | None = None,
        preserve_color: bool | str = False,
        max_tile: int = 0,
        look_size: int = 0,
    ) -> ImageLike:
        """Stylize ``content`` with one style, a weighted mix of styles, or two styles under a mask.

        ``content``: a PIL image or a 3×H×W / N×3×H×W tensor in [0, 1]; the result is of the same
        kind and size (a PIL content's alpha channel is carried over). ``alpha`` in [0, 1] is the
        style strength; ``style_weights`` are normalised to sum 1; ``mask`` (white → first style,
        black → second) needs exactly two styles; ``preserve_color``: False, True (= ``"coral"``)
        or ``"luminance"`` (see :mod:`adain.media.color`); ``max_tile``: an image of more than
        ``max_tile``² pixels is stylized in tiles of at most that side (0: never; see :meth:`forward`);
        ``look_size``: a content whose shorter side is larger is stylized at this shorter side and
        brought back to its size by :func:`~adain.media.guided_filter.guided_upsample`, so its strokes are
        as large, relative to the picture, as on a ``look_size`` result (0: off).
        """
        styles = list(style_or_styles) if isinstance(style_or_styles, (list, tuple)) else [style_or_styles]
        method = check_stylize(alpha, len(styles), style_weights, mask is not None, preserve_color, max_tile, look_size)
        if method is not None and any(isinstance(s, StyleCode) for s in styles):
            raise ValueError("preserve_color needs the style images, not pre-encoded StyleCodes")
        alpha_channel = None
        if isinstance(content, Image.Image):
            loaded = pil_to_tensor(content)
            batch, alpha_channel = loaded.rgb, loaded.alpha
        else:
            batch = _as_batch(content)
        mask_t = None if mask is None else _check_mask(_as_mask(mask), batch)
        out = self.render(batch, styles, alpha, style_weights, mask_t, method, max_tile, look_size)
        if isinstance(content, Image.Image):
            return tensor_to_pil(out[0], alpha_channel)
        out = out.to(content.device)
        return out[0] if content.dim() == 3 else out

    @torch.inference_mode()
    def render(
        self,
        content: Tensor,
        styles: Sequence[StyleCode | Tensor],
        alpha: float,
        style_weights: Sequence[float] | None,
        mask: Tensor | None,
        method: str | None,
        max_tile: int,
        look_size: int,
    ) -> Tensor:
        """:meth:`stylize` on N×3×H×W ``content`` whose settings were checked already, by
        :meth:`stylize` or by a :class:`~adain.jobs.request.Request` on construction, and are not
        checked again: ``mask`` N×1×H×W shaped like the content, ``method`` a colour method's
        name or None, ``styles`` codes or N×3×H×W images. The output stays on the model's device."""
        small = content
        if 0 < look_size < min(content.shape[-2:]):
            width, height = target_size(content.shape[-1], content.shape[-2], look_size)
            small = resize(content, (height, width))
        if method is None:
            codes = [s if isinstance(s, StyleCode) else self.encode_style(s) for s in styles]
            out = self._transfer(small, codes, style_weights, mask, alpha, max_tile)
        else:
            outs = [self._preserving(c[None], styles, style_weights, mask, alpha, method, max_tile) for c in small]
            out = outs[0] if len(outs) == 1 else torch.cat(outs)  # one image: no copy of a full-size result
        if small is not content:
            out = guided_upsample(out, small.to(out.device), content.to(out.device))
        return out

    def _preserving(
        self,
        content: Tensor,
        styles: Sequence[ImageLike],
        weights: Sequence[float] | None,
        mask: Tensor | None,
        alpha: float,
        method: str,
        max_tile: int,
    ) -> Tensor:
        """One content image stylized under a colour-preservation method."""
        content = content.to(self.device)
        codes = [self.encode_style(color.prepare_style(_as_batch(s).to(self.device), content, method)) for s in styles]
        out = self._transfer(color.prepare_content(content, method), codes, weights, mask, alpha, max_tile)
        return color.finish(out, content, method)


IMAGES = "images must be PIL images or 3×H×W / N×3×H×W tensors in [0, 1]"
MASKS = "a mask must be a PIL image or an H×W / 1×H×W / N×1×H×W tensor in [0, 1], or an RGB one (3×H×W / N×3×H×W)"


def _described(value: object) -> str:
    """What was given instead of an image, for an error message."""
    return f"a {'×'.join(map(str, value.shape))} tensor" if isinstance(value, Tensor) else f"a {type(value).__name__}"


def _checked(image: Tensor, expected: str) -> Tensor:
    """``image`` as float32; ValueError (``expected``, then what is wrong) unless it is a non-empty tensor
    of numbers in [0, 1]: a 0–255 image or a NaN pixel would otherwise give a wrong or NaN picture silently."""
    if image.numel() == 0:
        raise ValueError(f"{expected}; got an empty tensor")
    if image.dtype != torch.bool:
        if not image.is_floating_point():
            raise ValueError(f"{expected}; got a {image.dtype} tensor (divide 8-bit values by 255)")
        low, high = (v.item() for v in torch.aminmax(image))
        if not 0 <= low <= high <= 1:
            raise ValueError(f"{expected}; got values from {low:g} to {high:g}")
    return image.float()


def _as_batch(image: ImageLike) -> Tensor:
    """PIL image or 3×H×W / N×3×H×W tensor → N×3×H×W float tensor in [0, 1]."""
    if isinstance(image, Image.Image):
        return pil_to_tensor(image).rgb
    if not isinstance(image, Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"{IMAGES}; got {_described(image)}")
    return _checked(image[None] if image.dim() == 3 else image, IMAGES)


def _check_mask(mask: Tensor, content: Tensor) -> Tensor:
    """``mask`` (N×1×H×W) unless it is shaped unlike the N×3×H×W ``content`` or a batch of masks does
    not match the contents one to one (ValueError)."""
    check_mask_shape(mask.shape[-2:], content.shape[-2:])
    if mask.shape[0] not in (1, content.shape[0]):  # broadcast, it would make as many outputs as masks
        raise ValueError(f"{mask.shape[0]} masks for {content.shape[0]} content image(s): give one, or one per content")
    return mask


def _as_mask(mask: ImageLike) -> Tensor:
    """PIL image or H×W / 1×H×W / N×1×H×W tensor → N×1×H×W float mask in [0, 1]; an RGB one (PIL,
    3×H×W, N×3×H×W) is read as the mean of its channels (:func:`~adain.model.functional.mask_from_rgb`)."""
    if isinstance(mask, Image.Image):
        return mask_from_rgb(pil_to_tensor(mask).rgb)
    if not isinstance(mask, Tensor) or not 2 <= mask.dim() <= 4 or (mask.dim() > 2 and mask.shape[-3] not in (1, 3)):
        raise ValueError(f"{MASKS}; got {_described(mask)}")
    mask = _checked(mask, MASKS)
    while mask.dim() < 4:
        mask = mask[None]
    return mask_from_rgb(mask) if mask.shape[1] == 3 else mask
