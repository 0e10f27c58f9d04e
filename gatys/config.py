"""The hyperparameters of the Gatys optimisation as one object, and their defaults.

:data:`DEFAULTS` is the one source of truth; ``configs/gatys.yaml`` mirrors it (a test keeps
them equal) and ``infer.py --method gatys --config`` reads such files. A :class:`GatysConfig`
checks itself when it is made, so :func:`gatys.stylize`, the command line and
:func:`load_config` refuse the same settings with the same messages.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace

import yaml

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style", "adain")
PRECISIONS = ("fp32", "bf16")  # the encoder's arithmetic; fp16's gradients would need loss scaling


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

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose from {INITS}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        weights = (self.content_weight, self.style_weight, self.tv_weight)
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError(f"content, style and TV weights must be finite and >= 0, got {list(weights)}")
        for lr in self.learning_rates.values():
            if not (math.isfinite(lr) and lr > 0):
                raise ValueError(f"lr must be finite and > 0, got {lr}")

    def lr(self, optimizer: str) -> float:
        """The step size of ``optimizer``."""
        return self.learning_rates[optimizer]

    def with_lr(self, lr: float | None) -> "GatysConfig":
        """These settings with the chosen optimiser's step size set to ``lr`` (``None``: unchanged)."""
        return self if lr is None else replace(self, learning_rates={**self.learning_rates, self.optimizer: lr})


DEFAULTS = GatysConfig()


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
