"""Image reading and writing, in one place, for every entry point (CLI, app, training tools).

Reading applies the EXIF orientation, accepts any Pillow colour mode (greyscale, palette,
CMYK, 16-bit, with or without alpha) and turns every failure into :class:`ImageError`
with a one-line reason. Memory follows the working size, not the file's: a JPEG is decoded at
a reduced scale where that still leaves twice the working size (``Image.draft``), and an image
is shrunk in Pillow, in its own bit depth, before it becomes floats, so a 9000×9000 file read at
512 px never exists as a float array at full size. Images under ``MIN_SIDE`` pixels are refused.

Writing goes to a temporary file that is renamed into place, so a failed or interrupted write
never leaves a partial file under the final name.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .atomicfile import atomic_path
from .errors import ImageError
from .options import OUTPUT_FORMATS

ALPHA_FORMATS = {"PNG", "WEBP"}
MAX_INPUT_PIXELS = 100_000_000  # larger files are refused before decoding (decompression bombs)
MAX_WORK_PIXELS = 16_000_000  # largest image processed in one piece, after resizing (≈ 4000×4000)
MIN_SIDE = 8  # a smaller image holds no picture to stylise: refused, not silently enlarged
# A JPEG is decoded at a reduced DCT scale only down to this many times the working size, so the
# resize after it still sees enough pixels (the result differs from a full decode by a few levels
# at most, tests/test_imageio.py).
DRAFT_MARGIN = 2


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
    in_memory = isinstance(source, bytes)
    path = None if in_memory else Path(source)
    name = name if name is not None else ("image" if in_memory else path)
    if path is not None and path.is_dir():
        raise ImageError(name, "is a directory, not an image")
    try:
        if (len(source) if in_memory else path.stat().st_size) == 0:
            raise ImageError(name, "empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if in_memory else path) as img:
                if img.width * img.height > max_pixels:
                    raise ImageError(name, f"too large ({img.width}×{img.height} pixels; limit {max_pixels:,})")
                scale = DRAFT_MARGIN * short_side / min(img.size)
                if img.format == "JPEG" and 0 < scale < 1:
                    img.draft(img.mode, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
                img.load()
                return ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(name, f"too large (over Pillow's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise ImageError(name, "not a recognised image file") from None
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # truncated/corrupt data
        raise ImageError(name, f"corrupt or truncated image ({err})") from None


def has_alpha(img: Image.Image) -> bool:
    """Whether the image carries transparency (an alpha band or a transparent palette entry)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def shrink(img: Image.Image, width: int, height: int) -> Image.Image:
    """``img`` made smaller to ``width``×``height`` in Pillow, in its own bit depth, or as it is
    if that is no smaller. Pillow's bicubic resampling is the filter that torch's antialiased
    bicubic reproduces, so this matches resizing the float image to within a few levels, without
    a float copy of the whole file. Palette and 1-bit images (which Pillow resamples only by
    nearest neighbour) and a transparent colour key (which resampling would miss) become RGB(A)
    first, as :func:`split_alpha` would make them."""
    if width >= img.width or height >= img.height:
        return img
    if img.mode in ("P", "PA", "1") or (has_alpha(img) and img.mode not in ("RGBA", "LA")):
        img = img.convert("RGBA" if has_alpha(img) else "RGB")
    return img.resize((width, height), Image.Resampling.BICUBIC)


def split_alpha(img: Image.Image) -> tuple[Tensor, Tensor | None]:
    """Float RGB (1×3×H×W) and alpha (1×1×H×W) tensors in [0, 1] from any Pillow mode.

    8-bit images become floats one channel at a time, straight into the result, so a large
    image never exists as more than its 8-bit array plus one float copy."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = torch.from_numpy(np.clip(arr / top, 0.0, 1.0).astype(np.float32))
        return grey.expand(1, 3, *grey.shape).contiguous(), None
    planes = torch.from_numpy(np.array(img.convert("RGBA" if has_alpha(img) else "RGB"))).permute(2, 0, 1)
    floats = torch.empty((1, *planes.shape), dtype=torch.float32)
    for channel, plane in enumerate(planes):
        floats[0, channel].copy_(plane).div_(255.0)
    return floats[:, :3], (floats[:, 3:] if len(planes) == 4 else None)


def check_work_size(width: int, height: int, max_pixels: int, name: str | os.PathLike) -> None:
    """:class:`ImageError` naming the file and the limit if a working size is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageError(name, f"too large to stylise at {width}×{height} pixels (limit {max_pixels:,}); lower the size")


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
    name = name if name is not None else ("image" if isinstance(source, bytes) else source)
    return prepare_image(open_image(source, name, max_input, short_side), short_side, crop, max_pixels, name)


def prepare_image(
    img: Image.Image,
    short_side: int = 0,
    crop: bool = False,
    max_pixels: int = MAX_WORK_PIXELS,
    name: str | os.PathLike = "image",
) -> LoadedImage:
    """A decoded Pillow image → :class:`LoadedImage`, resized (antialiased) and checked for size."""
    if min(img.size) < MIN_SIDE:
        size = f"{img.width}×{img.height} pixels"
        raise ImageError(name, f"too small ({size}; the shorter side must be at least {MIN_SIDE})")
    width, height = target_size(img.width, img.height, short_side)
    side = min(width, height)
    check_work_size(*((side, side) if crop else (width, height)), max_pixels, name)
    try:
        rgb_t, alpha_t = split_alpha(shrink(img, width, height))
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
    except OSError as err:
        raise ImageError(path, f"cannot write ({err.strerror or err})") from None
