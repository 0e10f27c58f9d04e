"""Gatys et al. (CVPR 2016) optimisation-based style transfer on the shared VGG19 encoder."""

from typing import TYPE_CHECKING

from adain.core.lazy import lazy_exports

_EXPORTS = {
    "DEFAULTS": "config",
    "GatysConfig": "config",
    "GatysObjective": "objective",
    "GatysResult": "optimize",
    "load_config": "config",
    "stylize": "optimize",
}
__all__ = ["DEFAULTS", "GatysConfig", "GatysObjective", "GatysResult", "load_config", "stylize"]  # = _EXPORTS' keys
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .config import DEFAULTS, GatysConfig, load_config
    from .objective import GatysObjective
    from .optimize import GatysResult, stylize
