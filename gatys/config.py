"""The hyperparameters of the Gatys optimisation as one object, and their defaults.

:data:`DEFAULTS` is the one source of truth; ``configs/gatys.yaml`` mirrors it (a test keeps
them equal) and ``infer.py --method gatys --config`` reads such files. A :class:`GatysConfig`
checks itself when it is made, so :func:`gatys.stylize`, the command line and
:func:`load_config` refuse the same settings with the same messages.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

import yaml

from adain.core.options import VGG19_LAYERS

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style", "adain")
PRECISIONS = ("fp32", "bf16")  # the encoder's arithmetic; fp16's gradients would need loss scaling


def _non_negative(value: object) -> bool:
    """Whether ``value`` is a finite number >= 0 (not a bool, not a string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class GatysConfig:
    """Every hyperparameter of :func:`gatys.stylize` that has a default (see docs/gatys.md for the trade-offs)."""

    steps: int = 500
    optimizer: str = "lbfgs"
    # Step size per optimiser: L-BFGS scales its quasi-Newton step (1 = the full step);
    # Adam's is in pixel units of a [0, 1] image.
    learning_rates: dict[str, float] = field(default_factory=lambda: {"lbfgs": 1.0, "adam": 0.02})
    content_weight: float = 1.0
    style_weight: float = 1.0e7  # on the normalised VGG19; docs/gatys.md: why not the paper's 1e3
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
        if not (isinstance(self.steps, int) and _non_negative(self.steps)):
            raise ValueError(f"steps must be >= 0 (a whole number), got {self.steps!r}")
        weights = (self.content_weight, self.style_weight, self.tv_weight)
        if not all(map(_non_negative, weights)):
            raise ValueError(f"content, style and TV weights must be finite and >= 0, got {list(weights)}")
        self._check_learning_rates()
        self._check_layers()

    def _check_learning_rates(self) -> None:
        """A finite, positive step size for each optimiser named, the chosen one among them."""
        rates = self.learning_rates
        if not isinstance(rates, Mapping) or not set(rates) <= set(OPTIMIZERS):
            raise ValueError(f"learning_rates must map optimizers {OPTIMIZERS} to step sizes, got {rates!r}")
        if self.optimizer not in rates:
            raise ValueError(f"learning_rates has no step size for the optimizer {self.optimizer!r}")
        for lr in rates.values():
            if not (_non_negative(lr) and lr > 0):
                raise ValueError(f"lr must be finite and > 0, got {lr!r}")

    def _check_layers(self) -> None:
        """VGG19 layers, at least one style layer, and one finite weight >= 0 per style layer (or none)."""
        layers = self.style_layers
        if not isinstance(layers, tuple):
            raise ValueError(f"style_layers must be a list of VGG19 layers, got {layers!r}")
        unknown = [name for name in (self.content_layer, *layers) if name not in VGG19_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown or no VGG19 layers {unknown}; choose from {VGG19_LAYERS}")
        weights = self.layer_weights
        fitting = isinstance(weights, tuple) and len(weights) == len(layers) and all(map(_non_negative, weights))
        if weights is not None and not fitting:
            raise ValueError(f"need one finite, non-negative weight per style layer ({len(layers)}), got {weights!r}")

    def lr(self, optimizer: str) -> float:
        """The step size of ``optimizer``."""
        return self.learning_rates[optimizer]

    def with_lr(self, lr: float | None) -> "GatysConfig":
        """These settings with the chosen optimiser's step size set to ``lr`` (``None``: unchanged)."""
        return self if lr is None else replace(self, learning_rates={**self.learning_rates, self.optimizer: lr})


DEFAULTS = GatysConfig()


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, except that ``1e6`` is a float, as in YAML 1.2 (YAML 1.1 reads it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def load_config(path: str | os.PathLike) -> GatysConfig:
    """A :class:`GatysConfig` from a YAML file; missing keys keep their defaults (``learning_rates``'
    too), unknown keys are an error."""
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=_Loader) or {}
    unknown = set(data) - {f.name for f in fields(GatysConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown Gatys settings {sorted(unknown)}")
    if isinstance(data.get("learning_rates"), Mapping):
        data["learning_rates"] = {**DEFAULTS.learning_rates, **data["learning_rates"]}
    for key in ("style_layers", "layer_weights"):
        if isinstance(data.get(key), list):  # anything else is left for GatysConfig to refuse
            data[key] = tuple(data[key])
    return GatysConfig(**data)
