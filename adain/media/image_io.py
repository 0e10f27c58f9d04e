"""Image reading and writing, in one place, for every entry point (CLI, app, training tools).

Reading applies the EXIF orientation, accepts any Pillow colour mode (greyscale, palette,
CMYK, 16-bit, 32-bit and float, with or without alpha; :func:`white_level` tells the range of
numeric ones) and turns every failure into :class:`ImageError` with a one-line reason. Memory
follows the working size, not the file's: a JPEG is decoded at a reduced scale where that still
leaves twice the working size (``Image.draft``), and an image is shrunk in Pillow, in its own bit
depth, before it becomes floats, so a 9000×9000 file read at 512 px never exists as a float array
at full size. Images under ``MIN_SIDE`` pixels are refused, and so are files of over
``MAX_INPUT_PIXELS``, from their header, before they are decoded.

Writing goes to a temporary file that is renamed into place, so a failed or interrupted write
never leaves a partial file under the final name; :func:`check_output_size` finds an image too
large for its format (JPEG, WebP) before it is made.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from adain.core.atomicfile import atomic_path
from adain.core.errors import ImageError
from adain.core.options import MIN_SIDE, OUTPUT_FORMATS

ALPHA_FORMATS = {"PNG", "WEBP"}
# The largest side each output format holds (libjpeg's limit, WebP's); PNG's 2³¹ − 1 is never reached.
OUTPUT_SIDE_LIMITS = {"JPEG": 65_500, "WEBP": 16_383}
MAX_INPUT_PIXELS = 100_000_000  # larger files are refused before decoding (decompression bombs)
MAX_WORK_PIXELS = 16_000_000  # largest image processed in one piece, after resizing (≈ 4000×4000)
TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
# A JPEG is decoded at a reduced DCT scale only down to this many times the working size, so the
# resize after it still sees enough pixels (the result differs from a full decode by a few levels
# at most, tests/test_imageio.py).
DRAFT_MARGIN = 2
# Every format Pillow reads but EPS, which Pillow hands to Ghostscript: an interpreter of programs,
# not a decoder of pixels, and not one to run on an untrusted file (an upload to the app).
Image.init()
READ_FORMATS = tuple(sorted(set(Image.OPEN) - {"EPS"}))


@dataclass
class LoadedImage:
    """An RGB image as a 1×3×H×W float tensor in [0, 1], and its alpha (1×1×H×W) if any."""

    rgb: Tensor
    alpha: Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[-2], self.rgb.shape[-1]


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to ``short_side`` (0 keeps the size)."""
    if short_side <= 0:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def work_size(width: int, height: int, short_side: int, crop: bool) -> tuple[int, int]:
    """(width, height) an image of ``width``×``height`` is processed at: :func:`target_size`, then
    with ``crop`` its central square."""
    width, height = target_size(width, height, short_side)
    return (min(width, height),) * 2 if crop else (width, height)


def source_name(source: str | os.PathLike | bytes, name: str | os.PathLike | None) -> str | os.PathLike:
    """What messages call an image: ``name``, else its path, else "image" (bytes in memory)."""
    return name if name is not None else ("image" if isinstance(source, bytes) else source)


def file_size(path: Path, name: str | os.PathLike) -> int:
    """The size in bytes of the file at ``path`` (OSError if it cannot be reached); ImageError for a folder."""
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(name, "is a directory, not an image")
    return info.st_size


def check_input_pixels(width: int, height: int, max_pixels: int, name: str | os.PathLike) -> None:
    """:class:`ImageError` naming the file and the limit if a file's image is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageError(name, f"too large ({width}×{height} pixels; limit {max_pixels:,})")


def read_failure(err: Exception) -> str:
    """Why an image could not be read: the system's reason when the file could not be reached
    (an OSError with an errno: a symbolic link loop, an I/O error), else its data's."""
    if isinstance(err, OSError) and err.strerror:
        return f"cannot read ({err.strerror})"
    return f"corrupt or truncated image ({err})"


@contextmanager
def opened(
    source: str | os.PathLike | bytes, name: str | os.PathLike | None = None, max_pixels: int = MAX_INPUT_PIXELS
) -> Iterator[Image.Image]:
    """An image file, or a file's bytes, opened but not yet decoded, once its header shows at most
    ``max_pixels`` pixels; any failure, opening it or in the ``with`` block, is an :class:`ImageError`.
    ``max_pixels`` is the limit that applies: Pillow's decompression-bomb warning (at 89 million
    pixels) is ignored, and its error (at twice that) reported as over ``max_pixels``."""
    name = source_name(source, name)
    in_memory = isinstance(source, bytes)
    try:
        if (len(source) if in_memory else file_size(Path(source), name)) == 0:
            raise ImageError(name, "empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if in_memory else source, formats=READ_FORMATS) as img:
                check_input_pixels(img.width, img.height, max_pixels, name)
                yield img
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(name, f"too large (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels; limit {max_pixels:,})") from None
    except UnidentifiedImageError:
        raise ImageError(name, "not a recognised image file") from None
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # unreachable, truncated or corrupt
        raise ImageError(name, read_failure(err)) from None


def open_image(
    source: str | os.PathLike | bytes,
    name: str | os.PathLike | None = None,
    max_pixels: int = MAX_INPUT_PIXELS,
    short_side: int = 0,
) -> Image.Image:
    """Open, fully decode and orient an image file, or a file's bytes in memory (an upload; ``name``
    is what messages call it); raise :class:`ImageError` on any problem. With ``short_side``
    (the working size it will be resized to), a JPEG is decoded at the smallest DCT scale that
    keeps ``DRAFT_MARGIN`` times that."""
    with opened(source, name, max_pixels) as img:
        scale = DRAFT_MARGIN * short_side / min(img.size)
        if img.format == "JPEG" and 0 < scale < 1:
            img.draft(img.mode, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
        img.load()
        return ImageOps.exif_transpose(img)


def planned_size(source: str | os.PathLike, short_side: int = 0, crop: bool = False) -> tuple[int, int]:
    """(width, height) that :func:`load_image` will give an image file, from its header alone (its
    EXIF orientation applied): what an output or a mask is checked against before stylizing.
    Pillow's ``PngImageFile.getexif`` would decode the whole file to look for an eXIf chunk after
    the pixels, where the PNG standard does not put it, so only the header's EXIF and XMP are read."""
    with opened(source) as img:
        turned = Image.Image.getexif(img).get(ExifTags.Base.Orientation, 1) in TRANSPOSING
        width, height = (img.height, img.width) if turned else img.size
    return work_size(width, height, short_side, crop)


def is_numeric(img: Image.Image) -> bool:
    """Whether ``img`` is one band of 16-bit, 32-bit or float numbers (modes I;16*, I, F): a grey
    image whose white :func:`white_level` tells."""
    return img.mode in ("I", "F") or img.mode.startswith("I;16")


def has_alpha(img: Image.Image) -> bool:
    """Whether the image carries transparency (an alpha band or a transparent palette entry). A
    colour key on a numeric image (a 16-bit PNG's) is ignored, at every size: Pillow would make
    it 8-bit RGBA, clipping the values."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or ("transparency" in img.info and not is_numeric(img))


def white_level(img: Image.Image) -> float:
    """The value that is white: 255 in 8-bit modes, 65535 in 16-bit ones. An I (32-bit) or F
    (float) image states no range, so its largest value decides: an F image is taken as 0–1 if
    that is at most 1 (floats' usual range), the others as 0–255 if it is at most 255, else as
    0–65535 (above, values clip). Found on the whole image, before it is shrunk: resampling
    overshoots at edges, which must not change the scale."""
    if not is_numeric(img):
        return 255.0
    if img.mode.startswith("I;16"):
        return 65535.0
    largest = img.getextrema()[1]
    return next((level for level in ((1.0, 255.0) if img.mode == "F" else (255.0,)) if largest <= level), 65535.0)


def check_finite(img: Image.Image, name: str | os.PathLike) -> None:
    """:class:`ImageError` naming the file if a float (F) image holds NaN or infinity: such a pixel
    has no brightness, and resizing would spread it over its neighbours. Read in bands of rows, so
    no copy of the whole image is made."""
    if img.mode != "F":
        return
    rows = max(1, 2**22 // img.width)
    for top in range(0, img.height, rows):
        if not np.isfinite(np.asarray(img.crop((0, top, img.width, min(top + rows, img.height))))).all():
            raise ImageError(name, "has pixels that are not finite numbers (NaN or infinity)")


def shrink(img: Image.Image, width: int, height: int) -> Image.Image:
    """``img`` made smaller to ``width``×``height`` in Pillow, in its own bit depth, or as it is
    if that is no smaller. Pillow's bicubic resampling is the filter that torch's antialiased
    bicubic reproduces, so this matches resizing the float image to within a few levels, without
    a float copy of the whole file. Palette and 1-bit images (which Pillow resamples only by
    nearest neighbour) and a transparent colour key (which resampling would miss) become RGB(A)
    first, as :func:`split_alpha` would make them; 16-bit modes other than I;16 (big-endian or
    native order, whose values Pillow's resampling scrambles) become 32-bit I, values unchanged."""
    if width >= img.width or height >= img.height:
        return img
    if img.mode.startswith("I;16") and img.mode != "I;16":
        img = img.convert("I")
    elif img.mode in ("P", "PA", "1") or (has_alpha(img) and img.mode not in ("RGBA", "LA")):
        img = img.convert("RGBA" if has_alpha(img) else "RGB")
    return img.resize((width, height), Image.Resampling.BICUBIC)


def split_alpha(img: Image.Image, white: float | None = None) -> tuple[Tensor, Tensor | None]:
    """Float RGB (1×3×H×W) and alpha (1×1×H×W) tensors in [0, 1] from any Pillow mode. A numeric
    image is grey, ``white`` its white (default: :func:`white_level` of ``img``; a shrunk image
    takes its original's).

    8-bit images become floats one channel at a time, straight into the result, so a large
    image never exists as more than its 8-bit array plus one float copy."""
    if is_numeric(img):
        arr = np.asarray(img, dtype=np.float64) / (white_level(img) if white is None else white)
        grey = torch.from_numpy(np.clip(arr, 0.0, 1.0).astype(np.float32))
        return grey.expand(1, 3, *grey.shape).contiguous(), None
    planes = torch.from_numpy(np.array(img.convert("RGBA" if has_alpha(img) else "RGB"))).permute(2, 0, 1)
    floats = torch.empty((1, *planes.shape), dtype=torch.float32)
    for channel, plane in enumerate(planes):
        floats[0, channel].copy_(plane).div_(255.0)
    return floats[:, :3], (floats[:, 3:] if len(planes) == 4 else None)


def check_min_side(width: int, height: int, name: str | os.PathLike) -> None:
    """:class:`ImageError` naming the file if its shorter side is under ``MIN_SIDE``: such an image
    is refused, never enlarged to the working size."""
    if min(width, height) < MIN_SIDE:
        raise ImageError(name, f"too small ({width}×{height} pixels; the shorter side must be at least {MIN_SIDE})")


def check_work_size(width: int, height: int, max_pixels: int, name: str | os.PathLike) -> None:
    """:class:`ImageError` naming the file and the limit if a working size is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageError(name, f"too large to stylize at {width}×{height} pixels (limit {max_pixels:,}); lower the size")


def load_image(
    source: str | os.PathLike | bytes,
    short_side: int = 0,
    crop: bool = False,
    max_pixels: int = MAX_WORK_PIXELS,
    name: str | os.PathLike | None = None,
    max_input: int = MAX_INPUT_PIXELS,
) -> LoadedImage:
    """Read an image file (or a file's bytes, called ``name``), resize its shorter side to
    ``short_side`` (0 keeps it) and optionally centre-crop it to a square."""
    name = source_name(source, name)
    return prepare_image(open_image(source, name, max_input, short_side), short_side, crop, max_pixels, name)


def prepare_image(
    img: Image.Image,
    short_side: int = 0,
    crop: bool = False,
    max_pixels: int = MAX_WORK_PIXELS,
    name: str | os.PathLike = "image",
) -> LoadedImage:
    """A decoded Pillow image → :class:`LoadedImage`, resized (antialiased) and checked for size
    (and a float image for NaN and infinity)."""
    check_min_side(img.width, img.height, name)
    check_finite(img, name)
    width, height = target_size(img.width, img.height, short_side)
    side = min(width, height)
    check_work_size(*work_size(img.width, img.height, short_side, crop), max_pixels, name)
    try:
        rgb_t, alpha_t = split_alpha(shrink(img, width, height), white_level(img))
    except (ValueError, OSError) as err:
        raise ImageError(name, f"unsupported colour mode {img.mode} ({err})") from None
    if (height, width) != rgb_t.shape[-2:]:
        rgb_t = resize(rgb_t, (height, width))
        alpha_t = None if alpha_t is None else resize(alpha_t, (height, width))
    if crop:
        rgb_t, alpha_t = center_crop(rgb_t, side), (None if alpha_t is None else center_crop(alpha_t, side))
    return LoadedImage(rgb_t.contiguous(), None if alpha_t is None else alpha_t.contiguous())


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Antialiased bicubic resize of an N×C×H×W tensor to (H, W), clamped to [0, 1]."""
    return torch.nn.functional.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)


def center_crop(image: Tensor, side: int) -> Tensor:
    """The central ``side``×``side`` square of an N×C×H×W tensor."""
    h, w = image.shape[-2:]
    top, left = (h - side) // 2, (w - side) // 2
    return image[..., top : top + side, left : left + side]


def to_uint8(image: Tensor) -> np.ndarray:
    """A C×H×W (or 1×C×H×W) tensor in [0, 1] → an H×W×C 8-bit array (rounded), made a band of rows
    at a time so that a large image needs no float copy of itself."""
    image = image.detach().reshape(-1, *image.shape[-2:])
    out = np.empty((*image.shape[1:], image.shape[0]), dtype=np.uint8)
    rows = max(1, 2**22 // out[0].size)
    for top in range(0, out.shape[0], rows):
        band = image[:, top : top + rows].to("cpu", torch.float32).permute(1, 2, 0).clamp(0, 1)
        torch.from_numpy(out[top : top + rows]).copy_(band.mul_(255.0).add_(0.5))  # truncates, as astype would
    return out


def tensor_to_pil(rgb: Tensor, alpha: Tensor | None = None) -> Image.Image:
    """A 3×H×W (or 1×3×H×W) tensor in [0, 1], plus optional alpha, → 8-bit RGB(A) Pillow image."""
    img = Image.fromarray(to_uint8(rgb), "RGB")
    if alpha is not None:
        img.putalpha(Image.fromarray(to_uint8(alpha)[..., 0], "L"))
    return img


def pil_to_tensor(img: Image.Image) -> LoadedImage:
    """Any Pillow image → :class:`LoadedImage` at its own size."""
    return prepare_image(img, max_pixels=MAX_INPUT_PIXELS)


def output_format(path: str | os.PathLike) -> str:
    """Pillow format name for an output path, from its extension (jpg, png, webp)."""
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageError(path, f"unsupported output extension; use one of {', '.join(sorted(OUTPUT_FORMATS))}")
    return fmt


def check_output_size(path: str | os.PathLike, width: int, height: int) -> None:
    """:class:`ImageError` naming ``path`` if its format cannot hold a ``width``×``height`` image
    (JPEG and WebP have a largest side): found before an image is stylized for it, not after."""
    fmt = output_format(path)
    limit = OUTPUT_SIDE_LIMITS.get(fmt)
    if limit is not None and max(width, height) > limit:
        holds = f"a {Path(path).suffix.lower()} file holds ({limit:,} a side at most)"
        raise ImageError(path, f"{width}×{height} pixels is more than {holds}; use .png")


def write_image(image: Image.Image | Tensor, target: str | os.PathLike | io.BytesIO, fmt: str, alpha: Tensor | None = None, quality: int = 95) -> None:
    """Encode in Pillow format ``fmt`` into a file or a buffer; alpha is kept for PNG/WebP, dropped for JPEG."""
    img = tensor_to_pil(image, alpha) if isinstance(image, Tensor) else image
    if fmt not in ALPHA_FORMATS and img.mode != "RGB":
        img = img.convert("RGB")
    img.save(target, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))


def encode_image(image: Image.Image | Tensor, fmt: str, alpha: Tensor | None = None, quality: int = 95) -> bytes:
    """An image file's bytes in Pillow format ``fmt`` (see :func:`write_image`)."""
    buffer = io.BytesIO()
    write_image(image, buffer, fmt, alpha, quality)
    return buffer.getvalue()


def save_image(image: Image.Image | Tensor, path: str | os.PathLike, alpha: Tensor | None = None, quality: int = 95) -> None:
    """Write atomically (temporary file + rename), encoding straight into the file; alpha is kept
    for PNG/WebP, dropped for JPEG."""
    path = Path(path)
    fmt = output_format(path)
    try:
        with atomic_path(path) as tmp:
            write_image(image, tmp, fmt, alpha, quality)
    except (OSError, ValueError) as err:  # Pillow's encoders raise ValueError too (an image too large)
        raise ImageError(path, f"cannot write ({getattr(err, 'strerror', None) or err})") from None
