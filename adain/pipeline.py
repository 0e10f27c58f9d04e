"""The one stylisation path: a :class:`~adain.request.Request` in, the stylised image out.

The command line, the app and the Python API's request form all hand their requests here, so the
images are read, resized, cropped and turned into a mask one way, and a style is encoded once per
(image, size, crop) and reused from :class:`StyleCodes`.
"""

from __future__ import annotations

from collections import OrderedDict

from .functional import mask_from_rgb
from .imageio import MAX_INPUT_PIXELS, MAX_WORK_PIXELS, LoadedImage, load_image
from .request import ImageSource, Request
from .transfer import StyleCode, StyleTransfer


def load(
    source: ImageSource, short_side: int, crop: bool, max_input: int = MAX_INPUT_PIXELS, max_work: int = MAX_WORK_PIXELS
) -> LoadedImage:
    """Read an image at its working size: the shorter side ``short_side`` (0 keeps it), optionally
    centre-cropped; :class:`~adain.errors.ImageError` names the source on any problem."""
    return load_image(source.data, short_side, crop, max_work, source.label, max_input)


class StyleCodes:
    """Encoded styles by (image, size, crop), the least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._codes: OrderedDict[str, StyleCode] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._codes)

    def get(self, model: StyleTransfer, style: ImageSource, size: int, crop: bool, max_input: int, max_work: int) -> StyleCode:
        """The style's code, from the cache or encoded now (and cached)."""
        key = f"{style.key}/{size}/{crop}"
        code = self._codes.get(key)
        if code is not None:
            self.hits += 1
            self._codes.move_to_end(key)
            return code
        self.misses += 1
        code = model.encode_style(load(style, size, crop, max_input, max_work).rgb)
        self._codes[key] = code
        if len(self._codes) > self.capacity:
            self._codes.popitem(last=False)
        return code


def stylise(
    model: StyleTransfer,
    request: Request,
    codes: StyleCodes | None = None,
    max_input: int = MAX_INPUT_PIXELS,
    max_work: int = MAX_WORK_PIXELS,
) -> LoadedImage:
    """Stylise one request: the output (1×3×H×W, the content's working size) and the content's alpha.

    Without colour preservation each style is encoded once and reused (``codes``); with it the
    style images themselves are needed, since each is recoloured to the content.
    """
    content = load(request.content, request.content_size, request.crop, max_input, max_work)
    mask = None
    if request.mask is not None:
        mask = mask_from_rgb(load(request.mask, request.content_size, request.crop, max_input, max_work).rgb)
    if request.preserve_color:
        styles = [load(s, request.style_size, request.crop, max_input, max_work).rgb for s in request.styles]
    else:
        codes = codes if codes is not None else StyleCodes()
        styles = [codes.get(model, s, request.style_size, request.crop, max_input, max_work) for s in request.styles]
    out = model.stylize(
        content.rgb, styles, request.alpha, request.style_weights, mask, request.preserve_color or False, request.max_tile
    )
    return LoadedImage(out, content.alpha)
