"""Default hyperparameters of the Gatys optimisation: the one source of truth.

``configs/gatys.yaml`` mirrors :data:`DEFAULTS` (a test keeps them equal); the Python API
and the ``infer.py --method gatys`` flags take their defaults from here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields

import yaml

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style", "adain")


@dataclass(frozen=True)
class GatysConfig:
    """Every hyperparameter of :func:`gatys.stylize` that has a default (see README for the trade-offs)."""

    steps: int = 500
    optimizer: str = "lbfgs"
    # Step size per optimiser: L-BFGS scales its quasi-Newton step (1 = the full step);
    # Adam's is in pixel units of a [0, 1] image.
    learning_rates: dict[str, float] = field(default_factory=lambda: {"lbfgs": 1.0, "adam": 0.02})
    content_weight: float = 1.0
    style_weight: float = 1.0e7  # on the normalised VGG19; README: why not the paper's 1e3
    tv_weight: float = 0.0
    init: str = "content"
    content_layer: str = "relu4_2"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    # Per style layer; None = equal weights 1/len(style_layers), as in the paper.
    layer_weights: tuple[float, ...] | None = None

    def lr(self, optimizer: str) -> float:
        """The default step size of ``optimizer``."""
        return self.learning_rates[optimizer]

    def as_kwargs(self) -> dict[str, object]:
        """These settings as keyword arguments of :func:`gatys.stylize`."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "learning_rates"}
        return kwargs | {"lr": self.lr(self.optimizer)}


DEFAULTS = GatysConfig()


def check_settings(
    steps: int, optimizer: str, lr: float | None, init: str, save_every: int, *weights: float
) -> float:
    """ValueError for settings that can never work (the Python API's and the command line's one
    check); returns the step size to use (``None``: the optimiser's default)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {OPTIMIZERS}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose from {INITS}")
    if steps < 0 or save_every < 0:
        raise ValueError("steps and save_every must be >= 0")
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise ValueError(f"content, style and TV weights must be finite and >= 0, got {list(weights)}")
    lr = DEFAULTS.lr(optimizer) if lr is None else lr
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0, got {lr}")
    return lr


def load_config(path: str | os.PathLike) -> GatysConfig:
    """A :class:`GatysConfig` from a YAML file; missing keys keep their defaults, unknown keys are an error."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    unknown = set(data) - {f.name for f in fields(GatysConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown Gatys settings {sorted(unknown)}")
    for key in ("style_layers", "layer_weights"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return GatysConfig(**data)
