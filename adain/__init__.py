"""Fast arbitrary style transfer with AdaIN (Huang & Belongie, ICCV 2017) on a shared VGG19 encoder."""

from typing import TYPE_CHECKING

from .lazy import lazy_exports

_EXPORTS = {
    "Decoder": "decoder",
    "LAYERS": "encoder",
    "StyleCode": "transfer",
    "StyleTransfer": "transfer",
    "VGG19Encoder": "encoder",
    "adain": "functional",
    "mean_std": "functional",
}
__all__ = ["Decoder", "LAYERS", "StyleCode", "StyleTransfer", "VGG19Encoder", "adain", "mean_std"]  # = _EXPORTS' keys
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .decoder import Decoder
    from .encoder import LAYERS, VGG19Encoder
    from .functional import adain, mean_std
    from .transfer import StyleCode, StyleTransfer
