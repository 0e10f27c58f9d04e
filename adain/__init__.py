"""Fast arbitrary style transfer with AdaIN (Huang & Belongie, ICCV 2017) on a shared VGG19 encoder.

Subpackages, each importing only those before it: ``core`` (plumbing), ``media`` (image and video
files, colour), ``vgg`` (the shared encoder), ``model`` (AdaIN: maths, decoder, decoder files,
:class:`StyleTransfer`, tiling), ``jobs`` (requests to images and videos), ``training`` and
``app`` (docs/architecture.md).
"""

from typing import TYPE_CHECKING

from adain.core.lazy import lazy_exports, moved_modules

_EXPORTS = {
    "Decoder": "model.decoder",
    "LAYERS": "vgg.encoder",
    "StyleCode": "model.style_transfer",
    "StyleTransfer": "model.style_transfer",
    "VGG19Encoder": "vgg.encoder",
    "adain": "model.functional",
    "mean_std": "model.functional",
}
__all__ = ["Decoder", "LAYERS", "StyleCode", "StyleTransfer", "VGG19Encoder", "adain", "mean_std"]  # = _EXPORTS' keys
__getattr__ = lazy_exports(__name__, _EXPORTS)

# Where the public exports and the documented request path lived before the subpackages (0.x):
# importing them still works, with a DeprecationWarning, until the next release.
moved_modules(
    __name__,
    {
        "decoder": "model.decoder", "encoder": "vgg.encoder", "functional": "model.functional",
        "transfer": "model.style_transfer", "request": "jobs.request", "pipeline": "jobs.image", "video": "jobs.video",
    },
)  # fmt: skip

if TYPE_CHECKING:
    from adain.model.decoder import Decoder
    from adain.model.functional import adain, mean_std
    from adain.model.style_transfer import StyleCode, StyleTransfer
    from adain.vgg.encoder import LAYERS, VGG19Encoder
