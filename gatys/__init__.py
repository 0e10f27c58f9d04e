"""Gatys et al. (CVPR 2016) optimisation-based style transfer on the shared VGG19 encoder."""

from .config import DEFAULTS, GatysConfig, load_config
from .objective import GatysObjective
from .optimize import GatysResult, stylize

__all__ = ["DEFAULTS", "GatysConfig", "GatysObjective", "GatysResult", "load_config", "stylize"]
