"""The one stylization path: a :class:`~adain.jobs.request.Request` in, the stylized image out.

The command line, the app and the Python API's request form all hand their requests here, so the
images are read, resized, cropped and turned into a mask one way, and a style is encoded once per
(image, size, crop) and reused from :class:`StyleCodes`.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor

from adain.core.errors import ImageError
from adain.jobs.request import ImageSource, Request
from adain.media.image_io import MAX_INPUT_PIXELS, MAX_WORK_PIXELS, LoadedImage, load_image
from adain.model.functional import check_mask_shape, mask_from_rgb
from adain.model.style_transfer import StyleCode, StyleTransfer

# The largest content stylized in tiles (8000×8000): memory then grows only with the content and
# result buffers, 24 bytes per pixel (docs/large-images.md); anything processed in one piece
# (styles, and contents with max_tile=0) stays within imageio.MAX_WORK_PIXELS.
MAX_TILED_PIXELS = 64_000_000


def load(
    source: ImageSource, short_side: int, crop: bool, max_input: int = MAX_INPUT_PIXELS, max_work: int = MAX_WORK_PIXELS
) -> LoadedImage:
    """Read an image at its working size: the shorter side ``short_side`` (0 keeps it), optionally
    centre-cropped; :class:`~adain.core.errors.ImageError` names the source on any problem."""
    return load_image(source.data, short_side, crop, max_work, source.label, max_input)


class StyleCodes:
    """Encoded styles by (image, size, crop) and by what encodes them (the encoder's weights, the precision
    and the device: a code is of no use to another model), the least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._codes: OrderedDict[str, StyleCode] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._codes)

    def get(self, model: StyleTransfer, style: ImageSource, size: int, crop: bool, max_input: int, max_work: int) -> StyleCode:
        """The style's code, from the cache or encoded now (and cached)."""
        key = f"{model.encoder.identity}/{model.precision}/{model.device}/{style.key}/{size}/{crop}"
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


def limits(request: Request, max_work: int | None = None) -> tuple[int, int]:
    """The pixel limits of a request's working sizes: (content and mask, styles). A content
    stylized in tiles may reach :data:`MAX_TILED_PIXELS`; whatever is processed in one piece
    ``MAX_WORK_PIXELS``; ``max_work`` (a server's limit) lowers both."""
    whole = min(max_work or MAX_WORK_PIXELS, MAX_WORK_PIXELS)
    return (min(max_work or MAX_TILED_PIXELS, MAX_TILED_PIXELS) if request.max_tile else whole), whole


def mask_for(
    request: Request, content_size: tuple[int, int], short_side: int, crop: bool, max_input: int, limit: int
) -> Tensor | None:
    """The request's mask as the model takes it (1×1×H×W in [0, 1]; None without one), read with the
    shorter side ``short_side``; an :class:`~adain.core.errors.ImageError` naming the mask's file unless
    it is shaped like the content (``content_size``: height, width)."""
    if request.mask is None:
        return None
    rgb = load(request.mask, short_side, crop, max_input, limit).rgb
    try:
        check_mask_shape(rgb.shape[-2:], content_size)
    except ValueError as err:
        raise ImageError(request.mask.label, str(err)) from None
    return mask_from_rgb(rgb)


def styles_for(
    model: StyleTransfer, request: Request, codes: StyleCodes | None, max_input: int, limit: int
) -> list[StyleCode] | list[Tensor]:
    """The request's styles as the model takes them: encoded once and reused (``codes``), or,
    with colour preservation, the images themselves, since each is recoloured to the content."""
    if request.preserve_color:
        return [load(s, request.style_size, request.crop, max_input, limit).rgb for s in request.styles]
    codes = codes if codes is not None else StyleCodes()
    return [codes.get(model, s, request.style_size, request.crop, max_input, limit) for s in request.styles]


def stylize(
    model: StyleTransfer,
    request: Request,
    codes: StyleCodes | None = None,
    max_input: int = MAX_INPUT_PIXELS,
    max_work: int | None = None,
) -> LoadedImage:
    """Stylize one request: the output (1×3×H×W, the content's working size) and the content's alpha.
    ``codes`` keeps encoded styles between requests; ``max_work`` lowers the pixel limits (:func:`limits`)."""
    limit, whole = limits(request, max_work)
    content = load(request.content, request.content_size, request.crop, max_input, limit)
    mask = mask_for(request, content.rgb.shape[-2:], request.content_size, request.crop, max_input, limit)
    styles = styles_for(model, request, codes, max_input, whole)
    out = model.render(
        content.rgb, styles, request.alpha, request.style_weights, mask, request.preserve_color, request.max_tile,
        request.look_size,
    ).to(content.rgb.device)  # fmt: skip
    return LoadedImage(out, content.alpha)
