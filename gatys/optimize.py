"""Gatys et al. (CVPR 2016) style transfer: optimise the pixels of an image against the objective.

    from dataclasses import replace
    from gatys import DEFAULTS, stylize
    result = stylize(content, [style_a, style_b], replace(DEFAULTS, steps=300), style_weights=[0.7, 0.3], seed=0)
    result.image, result.history[-1]["total"]

Pixels are optimised directly and projected back into [0, 1] after every step (clamping),
rather than through a sigmoid: the content initialisation has many pixels at 0 or 1,
where a sigmoid's gradient vanishes.

The objective is divided by a constant for the optimiser: one over the largest pixel
gradient at the initial image. The size of the gradients depends on the encoder and the
weights (~1e10 on the raw Caffe VGG19, tens on the normalised default), and at the content
image the objective can curve downwards along the gradient, so L-BFGS rejects its first
curvature pairs and falls back to a plain gradient step: unscaled, on the raw network that
step threw every pixel to 0 or 1 and the run never recovered (and PyTorch's strong-Wolfe
line search stalled at step 0 instead). Scaled, a plain step moves no pixel by more than
``lr``, whatever the encoder. Only the ratio of the weights then matters, as in theory;
losses are reported unscaled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from adain.core.allocator import keep_freed_memory
from adain.core.checks import check_preserve_color, normalise_weights
from adain.core.device import resolve_device
from adain.media import color
from adain.media.image_io import pil_to_tensor, resize
from adain.vgg.encoder import LAYER_INDEX, LAYERS, VGG19Encoder

from .config import DEFAULTS, INITS, OPTIMIZERS, PRECISIONS, GatysConfig
from .lbfgs import DeviceLBFGS
from .objective import GatysObjective

ImageLike = Tensor | Image.Image
Callback = Callable[[int, Tensor], None]


class FastModel(Protocol):
    """What ``init='adain'`` needs of a fast model (:class:`adain.StyleTransfer` is one), named by
    its shape so that this method does not depend on AdaIN's."""

    encoder: VGG19Encoder

    def encode_style(self, style: Tensor) -> Any: ...
    def __call__(self, content: Tensor, codes: list[Any], style_weights: Sequence[float] | None) -> Tensor: ...
    def to(self, device: torch.device) -> Any: ...


@dataclass
class GatysResult:
    """The stylized image (1×3×H×W in [0, 1]), the losses after each step, and any snapshots.

    ``history[k]`` describes the image after ``k`` steps (``history[0]``: the initial image):
    ``step``, the unweighted ``content``, ``style`` and ``tv`` losses, the weighted ``total``,
    and ``seconds`` of optimisation until that image existed.
    """

    image: Tensor
    history: list[dict[str, float]]
    snapshots: list[tuple[int, Tensor]] = field(default_factory=list)


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    config: GatysConfig = DEFAULTS,
    *,
    style_weights: Sequence[float] | None = None,
    preserve_color: bool | str | None = False,
    seed: int | None = None,
    encoder: VGG19Encoder | None = None,
    adain_model: FastModel | None = None,
    save_every: int = 0,
    callback: Callback | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    precision: str = "fp32",
) -> GatysResult:
    """Optimise an image whose features match ``content`` and whose Gram matrices match ``styles``.

    ``content`` and each style: a PIL image or a 1×3×H×W / 3×H×W tensor in [0, 1]; the output
    has the content's size. ``config`` holds every hyperparameter (steps, optimiser and step size,
    loss weights, layers, initialisation; :data:`~gatys.config.DEFAULTS`, or
    ``dataclasses.replace(DEFAULTS, steps=100)``, or :func:`~gatys.config.load_config`). Several
    styles are blended by ``style_weights`` (normalised to sum 1) as a weighted sum of their style
    losses. ``config.init``: ``content``, ``noise`` (uniform, from ``seed``), ``style`` (the most
    heavily weighted style, resized) or ``adain`` (``adain_model``'s fast output). ``preserve_color``:
    False, True (= ``"coral"``) or ``"luminance"``, see :mod:`adain.media.color`. Every ``save_every``
    steps the current image is kept in ``result.snapshots`` and passed to ``callback(step, image)``.
    ``encoder`` defaults to ``adain_model``'s, else ``VGG19Encoder.load()`` (the normalised VGG19); ``device``
    (default: the encoder's, or the best available for a new one) moves it there. ``precision``
    (:data:`~gatys.config.PRECISIONS`): the encoder's arithmetic; the image, the Gram matrices,
    the losses and the optimiser stay fp32 (:class:`~gatys.objective.GatysObjective`).
    """
    method = check_preserve_color(preserve_color)
    if precision not in PRECISIONS:
        raise ValueError(f"Gatys runs in {' or '.join(PRECISIONS)}, not {precision}: fp16 gradients would need loss scaling")
    if save_every < 0:
        raise ValueError(f"save_every must be >= 0, got {save_every}")
    if config.init == "adain" and adain_model is None:
        raise ValueError("init='adain' needs adain_model (a StyleTransfer with a decoder)")
    weights_by_layer = _layer_weights(config.style_layers, config.layer_weights)
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not styles:
        raise ValueError("need at least one style image")
    blend = normalise_weights(style_weights, len(styles))
    encoder, device = _encoder_and_device(encoder, adain_model, device)
    original = _as_image(content)
    content_t, work, style_ts = _working_images(original, styles, device, method, weights_by_layer.keys() | {config.content_layer})

    objective = GatysObjective(
        encoder, work, style_ts, blend, content_layer=config.content_layer, layer_weights=weights_by_layer,
        content_weight=config.content_weight, style_weight=config.style_weight, tv_weight=config.tv_weight,
        precision=precision,
    )  # fmt: skip
    image = initial_image(config.init, work, style_ts, blend, seed, adain_model).to(device).contiguous().requires_grad_(True)
    opt = make_optimizer(config.optimizer, image, config.lr(config.optimizer), config.steps)

    def finished() -> Tensor:
        """The current image as the output will be: colour restored, on the caller's device."""
        out = image.detach().clamp(0, 1)
        return (out if method is None else color.finish(out, content_t, method)).to(original.device)

    rows, snapshots, seconds = _optimise(objective, image, opt, config.steps, finished, save_every, callback, progress)
    history = [{"step": k, **dict(zip(TERMS, row)), "seconds": seconds[k]} for k, row in enumerate(torch.stack(rows).tolist())]
    return GatysResult(finished(), history, snapshots)


def _working_images(
    original: Tensor, styles: list[ImageLike], device: torch.device, method: str | None, layers: set[str]
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """The content on the device, the content as optimised (its luminance with ``method``
    ``luminance``) and the styles (recoloured to the content with a colour method), sizes checked."""
    content_t = original.to(device)
    style_ts = [_as_image(s).to(device) for s in styles]
    for kind, img in [("content", content_t)] + [("style", s) for s in style_ts]:
        _check_size(kind, img, layers)
    if method is None:
        return content_t, content_t, style_ts
    return content_t, color.prepare_content(content_t, method), [color.prepare_style(s, content_t, method) for s in style_ts]


def _optimise(
    objective: GatysObjective,
    image: Tensor,
    opt: torch.optim.Optimizer,
    steps: int,
    finished: Callable[[], Tensor],
    save_every: int,
    callback: Callback | None,
    progress: bool,
) -> tuple[list[Tensor], list[tuple[int, Tensor]], list[float]]:
    """``steps`` optimiser steps on ``image``: the loss terms after each (row 0: the start, the last
    row: the final image), the snapshots (``finished()`` every ``save_every`` steps), and the
    seconds from the start to each step (0 for the start)."""
    device = image.device
    # Nothing in the loop waits for the device, so a GPU never idles for the host: the losses stay
    # there until the end, times are CUDA events, the progress bar shows losses once their copy has
    # arrived, and the optimiser decides on the device (gatys.lbfgs). Only snapshots are read back.
    rows: list[Tensor] = []  # rows[k]: the TERMS of the image after k steps
    snapshots: list[tuple[int, Tensor]] = []
    scale: Tensor | None = None  # fixed at the first evaluation: 1 / the largest pixel gradient there (module docstring)
    clock = StepClock(device)
    shown = LossReadout(device)
    bar = tqdm(range(1, steps + 1), desc="gatys", unit="step", leave=False, disable=not progress)
    for step in bar:

        def closure() -> Tensor:
            nonlocal scale
            opt.zero_grad(set_to_none=True)
            terms = objective(image)
            terms["total"].backward()
            if scale is None:
                scale = 1.0 / image.grad.abs().max().clamp_min(1e-12)
            image.grad.mul_(scale)
            rows.append(torch.stack([terms[k].detach() for k in TERMS]))
            return terms["total"].detach() * scale

        opt.step(closure)
        with torch.no_grad():
            image.clamp_(0, 1)
        clock.mark()
        if progress:
            latest = shown.latest(rows[-1])
            if latest is not None:
                bar.set_postfix({k: f"{latest[TERMS.index(k)]:.3g}" for k in ("total", "content", "style")}, refresh=False)
        if save_every and step % save_every == 0:
            snapshot = finished()
            snapshots.append((step, snapshot))
            if callback is not None:
                callback(step, snapshot)
    with torch.no_grad():
        terms = objective(image)
        rows.append(torch.stack([terms[k] for k in TERMS]))
    return rows, snapshots, [0.0, *clock.seconds()]


TERMS = ("content", "style", "tv", "total")  # what GatysObjective returns, in the order history rows hold them


class StepClock:
    """Seconds from its creation to each :meth:`mark`, taken without waiting for the device: on a
    GPU as CUDA events, read (once, waiting for them) by :meth:`seconds`."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.start = self._now()
        self.marks: list[float | torch.cuda.Event] = []

    def _now(self) -> float | torch.cuda.Event:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def mark(self) -> None:
        self.marks.append(self._now())

    def seconds(self) -> list[float]:
        if not self.cuda:
            return [m - self.start for m in self.marks]
        torch.cuda.synchronize()
        return [self.start.elapsed_time(m) / 1000 for m in self.marks]


class LossReadout:
    """Recent losses for a progress bar without waiting for the device: on a GPU a row is copied
    to pinned host memory behind the work already queued, and shown once that copy is done."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.pending: tuple[Tensor, torch.cuda.Event] | None = None
        self.last: list[float] | None = None

    def latest(self, row: Tensor) -> list[float] | None:
        """The most recent row whose values have arrived (``row`` itself on the CPU), or None yet."""
        if not self.cuda:
            return row.tolist()
        if self.pending is not None and self.pending[1].query():
            self.last, self.pending = self.pending[0].tolist(), None
        if self.pending is None:
            host = torch.empty(row.shape, dtype=row.dtype, pin_memory=True)
            host.copy_(row, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self.pending = (host, event)
        return self.last


def initial_image(
    init: str,
    content: Tensor,
    styles: Sequence[Tensor],
    weights: Sequence[float],
    seed: int | None = None,
    adain_model: FastModel | None = None,
) -> Tensor:
    """The image the optimisation starts from (1×3×H×W in [0, 1], detached, a fresh copy)."""
    if init == "content":
        return content.detach().clone()
    if init == "noise":
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return torch.rand(content.shape, generator=generator).to(content.device)
    if init == "style":
        heaviest = styles[max(range(len(styles)), key=lambda i: weights[i])]
        return resize(heaviest.detach(), tuple(content.shape[-2:])).clone()
    if init == "adain":
        if adain_model is None:
            raise ValueError("init='adain' needs adain_model (a StyleTransfer with a decoder)")
        codes = [adain_model.encode_style(s) for s in styles]
        return adain_model(content, codes, weights).clone()  # clone: out of inference mode
    raise ValueError(f"unknown init {init!r}; choose from {INITS}")


def make_optimizer(name: str, image: Tensor, lr: float, steps: int = 100) -> torch.optim.Optimizer:
    """L-BFGS (one iteration per ``step()``, PyTorch's history of 100, or ``steps`` if fewer, no line
    search, as in jcjohnson/neural-style; :class:`~gatys.lbfgs.DeviceLBFGS`, which never waits for
    the device) or Adam."""
    if name == "lbfgs":
        return DeviceLBFGS(image, lr=lr, history_size=max(1, min(100, steps)))
    if name == "adam":
        return torch.optim.Adam([image], lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def _layer_weights(style_layers: Sequence[str], weights: Sequence[float] | None) -> dict[str, float]:
    """Style layer → weight (equal 1/L when ``weights`` is None); :class:`GatysConfig` has checked both."""
    if weights is None:
        weights = [1.0 / len(style_layers)] * len(style_layers)
    return dict(zip(style_layers, map(float, weights)))


def _encoder_and_device(
    encoder: VGG19Encoder | None, adain_model: FastModel | None, device: str | torch.device | None
) -> tuple[VGG19Encoder, torch.device]:
    """The encoder to use and the device to run on (``adain_model`` and ``encoder`` are moved there)."""
    if device is not None and adain_model is not None:
        adain_model.to(resolve_device(device))
    if encoder is None:
        if adain_model is not None:
            encoder = adain_model.encoder
        else:
            encoder, device = VGG19Encoder.load(), "auto" if device is None else device
    target = encoder.preprocess.weight.device if device is None else resolve_device(device)
    if target.type == "cpu":
        keep_freed_memory()  # ~10 % faster steps at 512 px, see docs/benchmarks/README.md
    return encoder.to(target), target


def _as_image(image: ImageLike) -> Tensor:
    """PIL image or 3×H×W / 1×3×H×W tensor → 1×3×H×W float tensor."""
    if isinstance(image, Image.Image):
        return pil_to_tensor(image).rgb
    if isinstance(image, Tensor) and image.dim() == 3:
        image = image[None]
    if not isinstance(image, Tensor) or image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError("images must be PIL images or 3×H×W / 1×3×H×W tensors in [0, 1]")
    return image.float()


def _check_size(kind: str, image: Tensor, layers: set[str]) -> None:
    """The image must survive the poolings before the deepest layer in use (each halves it)."""
    pools = int(LAYERS[max(LAYER_INDEX[name] for name in layers)][4]) - 1
    if min(image.shape[-2:]) < 2**pools:
        h, w = image.shape[-2:]
        raise ValueError(f"{kind} image of {w}×{h} px is too small: these layers need a shorter side of {2**pools} px or more")
