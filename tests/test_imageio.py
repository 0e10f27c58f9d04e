"""Image reading (modes, orientation, failures, large files) and atomic writing."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image

from adain.core.errors import ImageError
from adain.media import image_io as imageio
from adain.media.image_io import load_image, open_image, save_image


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "CMYK", "1", "RGBA", "LA", "I;16"])
def test_colour_modes_load_as_rgb(tmp_path, mode):
    ext = ".tif" if mode == "CMYK" else ".png"
    path = make_image(tmp_path / f"img{ext}", (20, 12), mode)
    img = load_image(path)
    assert img.rgb.shape == (1, 3, 12, 20) and img.rgb.dtype == torch.float32
    assert 0 <= img.rgb.min() and img.rgb.max() <= 1
    assert (img.alpha is not None) == (mode in ("RGBA", "LA"))


def test_sixteen_bit_keeps_its_range(tmp_path):
    arr = np.full((8, 10), 65535 // 2, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    rgb = load_image(tmp_path / "g16.png").rgb
    torch.testing.assert_close(rgb, torch.full_like(rgb, 0.5), atol=1e-3, rtol=0)


def test_palette_transparency_becomes_alpha(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (0, 0, 4, 8))
    img.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0, :, :4].min() == 1 and loaded.alpha[0, 0, :, 4:].max() == 0


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (30, 10)  # (h, w): now portrait


def test_resize_shorter_side_and_crop(tmp_path):
    path = make_image(tmp_path / "a.png", (40, 20))
    assert load_image(path, 10).size == (10, 20)
    assert load_image(path, 10, crop=True).size == (10, 10)
    assert load_image(path, 0).size == (20, 40)
    assert load_image(make_image(tmp_path / "t.png", (8, 8)), 16).size == (16, 16)
    with pytest.raises(ImageError, match=r"too small \(7×1 pixels; the shorter side must be at least 8\)"):
        load_image(make_image(tmp_path / "line.png", (7, 1)), 512)  # never enlarged 512 times without a word


def write_truncated(path):
    make_image(path.with_suffix(".full.png"), (64, 64))
    data = path.with_suffix(".full.png").read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "prepare, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, I am text"), "not a recognised image"),
        (write_truncated, "corrupt or truncated"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "no such file"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, prepare, reason):
    path = tmp_path / "bad.png"
    prepare(path)
    with pytest.raises(ImageError, match=reason) as info:
        load_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_an_eps_file_is_not_handed_to_ghostscript(tmp_path, monkeypatch):
    """EPS is a PostScript program that Pillow renders by running Ghostscript: never on a file given to read."""
    from PIL import EpsImagePlugin

    path = tmp_path / "drawing.eps"
    Image.new("RGB", (16, 16), "red").save(path, "EPS")
    run = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: run.append(args))
    monkeypatch.setattr(EpsImagePlugin, "gs_windows_binary", None)
    for source, name in ((path, None), (path.read_bytes(), "upload")):
        with pytest.raises(ImageError) as info:
            load_image(source, name=name)
        assert str(info.value) == f"{name or path}: not a recognised image file" and not run


def test_huge_images_are_refused(tmp_path):
    path = make_image(tmp_path / "big.png", (64, 64))
    with pytest.raises(ImageError, match="too large"):
        open_image(path, max_pixels=1000)
    with pytest.raises(ImageError, match="too large to stylize"):
        load_image(path, short_side=5000, max_pixels=10**6)


def test_save_formats_and_alpha(tmp_path):
    rgb, alpha = torch.rand(1, 3, 9, 11), torch.full((1, 1, 9, 11), 0.5)
    for ext, mode in ((".png", "RGBA"), (".webp", "RGBA"), (".jpg", "RGB")):
        save_image(rgb, tmp_path / f"o{ext}", alpha=alpha)
        with Image.open(tmp_path / f"o{ext}") as img:
            assert img.size == (11, 9) and img.mode == mode
    with pytest.raises(ImageError, match="unsupported output extension"):
        save_image(rgb, tmp_path / "o.gif")


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def explode(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")  # a disk that fills up halfway through the image
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(ImageError, match="cannot write"):
        save_image(torch.rand(3, 4, 4), target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


# -- large files: shrunk before they become floats ---------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def float_resized(img: Image.Image, short_side: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reference: the whole image as floats, resized in torch (antialiased bicubic)."""
    rgb, alpha = imageio.split_alpha(img)
    width, height = imageio.target_size(img.width, img.height, short_side)
    return imageio.resize(rgb, (height, width)), None if alpha is None else imageio.resize(alpha, (height, width))


def detailed_photo(scale: int) -> Image.Image:
    """A real photo enlarged ``scale`` times with Lanczos (sharp edges, some ringing)."""
    photo = Image.open(ROOT / "examples/content/chelsea.jpg").convert("RGB")
    return photo.resize((photo.width * scale, photo.height * scale), Image.Resampling.LANCZOS)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "PA", "I;16", "CMYK"])
def test_a_large_image_is_shrunk_in_pillow_within_a_few_levels_of_the_float_resize(mode):
    img = detailed_photo(6)  # 2706×1800
    if mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        img.putalpha(img.convert("L").point(lambda v: 255 - v // 2))  # alpha varies with the content
    img = img.convert(mode) if mode != "I;16" else img.convert("L").point(lambda v: v * 257, "I").convert("I;16")
    for short_side in (64, 256, 511):
        reference, reference_alpha = float_resized(img, short_side)
        got = imageio.prepare_image(img, short_side)
        levels = (got.rgb - reference).abs() * 255
        # Pillow weights colours by alpha when it resamples (no dark fringes), the float reference
        # does not: images with alpha differ a little more where the alpha varies.
        mean_limit = 1.0 if reference_alpha is not None else 0.5
        assert got.rgb.shape == reference.shape
        assert levels.mean() < mean_limit and levels.max() <= 12, (short_side, levels.mean(), levels.max())
        if reference_alpha is not None:
            assert (got.alpha - reference_alpha).abs().mean() * 255 < 0.5


def test_the_float_conversion_sees_the_working_size_not_the_files(monkeypatch):
    seen = []
    split = imageio.split_alpha
    monkeypatch.setattr(imageio, "split_alpha", lambda img, *white: seen.append(img.size) or split(img, *white))
    big = Image.new("RGB", (6000, 4000), (30, 60, 90))
    assert imageio.prepare_image(big, 512).size == (512, 768)
    assert seen == [(768, 512)]
    imageio.prepare_image(Image.new("RGB", (30, 20)), 512)  # enlarging happens in floats, from the small image
    assert seen[-1] == (30, 20)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_that_keeps_twice_the_working_size(tmp_path):
    path = tmp_path / "big.jpg"
    detailed_photo(9).save(path, quality=95)  # 4059×2700
    assert open_image(path).size == (4059, 2700)
    assert open_image(path, short_side=512).size == (2030, 1350)  # 1/2: 1/4 would be under 2×512
    assert open_image(path, short_side=256).size == (1015, 675)  # 1/4
    assert open_image(path, short_side=2000).size == (4059, 2700)
    full = imageio.prepare_image(open_image(path), 256)
    drafted = load_image(path, 256)
    levels = (drafted.rgb - full.rgb).abs() * 255
    assert levels.mean() < 0.5 and levels.max() <= 6, (levels.mean(), levels.max())


# -- numeric modes: 16-bit in either byte order, with a colour key, float ------------------------


def gradient16(width: int = 200, height: int = 40) -> np.ndarray:
    """A left-to-right 16-bit gradient over the whole 0–65535 range."""
    return np.tile(np.linspace(0, 65535, width).astype(np.uint16), (height, 1))


def test_big_endian_16_bit_is_shrunk_like_little_endian(tmp_path):
    arr = gradient16()
    Image.frombytes("I;16B", (200, 40), arr.astype(">u2").tobytes()).save(tmp_path / "big.tif")
    Image.fromarray(arr).save(tmp_path / "little.tif")
    assert Image.open(tmp_path / "big.tif").mode == "I;16B"
    for short_side in (0, 20):  # as it is, and shrunk in Pillow (which scrambled I;16B: values wrapped around)
        big, little = (load_image(tmp_path / f"{n}.tif", short_side).rgb[0, 0] for n in ("big", "little"))
        assert (big[:, 1:] >= big[:, :-1]).all() and big.max() > 0.95
        torch.testing.assert_close(big, little, atol=1e-4, rtol=0)


def test_a_colour_key_on_16_bit_grey_is_ignored_at_every_size(tmp_path):
    Image.fromarray(gradient16()).save(tmp_path / "keyed.png", transparency=1000)
    full, shrunk = load_image(tmp_path / "keyed.png"), load_image(tmp_path / "keyed.png", 20)
    assert full.alpha is None and shrunk.alpha is None
    reference = imageio.resize(full.rgb, shrunk.size)  # was all white: made 8-bit RGBA, clipped at 255
    assert (shrunk.rgb - reference).abs().max() < 0.01 and shrunk.rgb.min() < 0.01


@pytest.mark.parametrize("top, white", [(1.0, 1.0), (200.0, 255.0), (40000.0, 65535.0)])
def test_float_images_are_read_in_the_range_their_values_fill(tmp_path, top, white):
    values = np.tile(np.linspace(0, top, 64, dtype=np.float32), (16, 1))
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    for short_side in (0, 8):  # the scale is the whole image's, whatever resizing overshoots
        rgb = load_image(tmp_path / "f.tif", short_side).rgb
        expected = imageio.resize(torch.from_numpy(values / white).expand(1, 3, 16, 64), rgb.shape[-2:])
        torch.testing.assert_close(rgb, expected, atol=0.01, rtol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_float_image_with_nan_or_infinity_is_refused(tmp_path, bad):
    values = np.full((16, 20), 0.5, dtype=np.float32)
    values[9, 13] = bad
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    for short_side in (0, 8):
        with pytest.raises(ImageError, match="f.tif: has pixels that are not finite numbers"):
            load_image(tmp_path / "f.tif", short_side)


# -- unreachable files, pixel limits, output limits --------------------------------------------


def test_a_symlink_loop_and_an_unreadable_folder_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    with pytest.raises(ImageError, match="loop.png: cannot read \\(Too many levels of symbolic links\\)"):
        load_image(tmp_path / "loop.png")
    hidden = tmp_path / "nox" / "a.png"
    stat = os.stat

    def denied(path, *args, **kwargs):  # a folder without read permission (chmod 000, not root)
        if str(path).startswith(str(hidden.parent) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    with pytest.raises(ImageError, match="nox/a.png: permission denied"):
        load_image(hidden)


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width``×``height`` 1-bit pixels but holds almost none: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_the_projects_pixel_limit_is_the_one_that_applies(tmp_path):
    # 90 MP: over Pillow's 89,478,485-pixel bomb warning, under MAX_INPUT_PIXELS: accepted, then
    # found truncated (it is a header only), not refused as too large
    ninety = png_header(tmp_path / "ninety.png", 10000, 9000)
    assert imageio.planned_size(ninety) == (10000, 9000)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        open_image(ninety)
    # over the limit: refused from the header, naming the limit; past Pillow's own error (2× its
    # warning) too, which it raises before the size can be checked
    for width, height, size in ((12000, 9000, "12000×9000 pixels"), (20000, 10000, "over 178,956,970 pixels")):
        bomb = png_header(tmp_path / f"{width}.png", width, height)
        with pytest.raises(ImageError, match=f"{width}.png: too large \\({size}; limit 100,000,000\\)"):
            open_image(bomb)


def test_planned_size_reads_the_header_with_its_orientation(tmp_path):
    img = Image.new("RGB", (30, 10), "red")
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert imageio.planned_size(tmp_path / "rot.jpg") == (10, 30) == load_image(tmp_path / "rot.jpg").size[::-1]
    assert imageio.planned_size(tmp_path / "rot.jpg", 20, crop=True) == (20, 20)


def test_output_formats_size_limits_are_checked_before_and_wrapped_when_writing(tmp_path):
    imageio.check_output_size(tmp_path / "ok.webp", 16383, 8)
    imageio.check_output_size(tmp_path / "ok.png", 70000, 8)
    for name, width, height in (("wide.webp", 16384, 8), ("tall.jpg", 8, 65501)):
        with pytest.raises(ImageError, match=f"{name}: {width}×{height} pixels is more than a \\{Path(name).suffix} file holds"):
            imageio.check_output_size(tmp_path / name, width, height)
    with pytest.raises(ImageError, match="wide.webp: cannot write \\(encoding error .*WebP limit"):  # was a bare ValueError
        save_image(torch.rand(1, 3, 8, 16384), tmp_path / "wide.webp")
    assert list(tmp_path.iterdir()) == []
