"""Fast arbitrary style transfer with AdaIN (Huang & Belongie, ICCV 2017) on a shared VGG19 encoder."""

from .decoder import Decoder
from .encoder import LAYERS, VGG19Encoder
from .ops import adain, mean_std
from .transfer import StyleCode, StyleTransfer

__all__ = ["Decoder", "LAYERS", "StyleCode", "StyleTransfer", "VGG19Encoder", "adain", "mean_std"]
