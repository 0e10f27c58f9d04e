"""Guided upsampling (adain.media.guided_filter) and the style-scale option built on it (look_size)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import grey_decoder, run_main, script
from PIL import Image

from adain.jobs.image import stylize
from adain.jobs.request import ImageSource, Request
from adain.media.guided_filter import guided_upsample
from adain.media.image_io import load_image, resize
from adain.model.decoder_file import save_decoder
from adain.model.style_transfer import StyleTransfer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_the_guide_restores_detail_that_plain_upsampling_loses(name):
    photo = load_image(ROOT / f"examples/content/{name}.jpg").rgb
    small = resize(photo, (photo.shape[-2] // 4, photo.shape[-1] // 4))
    bilinear = F.interpolate(small, size=photo.shape[-2:], mode="bilinear", align_corners=False)
    guided = guided_upsample(small, small, photo)
    assert guided.shape == photo.shape
    # measured: 0.011–0.016 against 0.021–0.030 for bilinear
    assert (guided - photo).abs().mean() < 0.7 * (bilinear - photo).abs().mean()


def test_a_flat_result_stays_flat_and_the_output_is_in_range():
    guide = torch.rand(1, 3, 64, 80)
    low = torch.full((1, 3, 16, 20), 0.25)
    out = guided_upsample(low, resize(guide, (16, 20)), guide)
    assert torch.allclose(out, torch.full_like(out, 0.25), atol=1e-6)
    wild = guided_upsample(torch.rand(2, 3, 16, 20), torch.rand(2, 3, 16, 20), torch.rand(2, 3, 64, 80))
    assert wild.shape == (2, 3, 64, 80) and wild.min() >= 0 and wild.max() <= 1


@pytest.mark.slow
def test_look_size_is_the_small_result_upsampled_guided_by_the_content(st):
    photo = load_image(ROOT / "examples/content/chelsea.jpg", 200).rgb  # 301×200
    style = load_image(ROOT / "examples/style/munch_the_scream.jpg", 128).rgb
    small = resize(photo, (96, 144))
    expected = guided_upsample(st.stylize(small, style), small, photo)
    for preserve_color in (False, "luminance"):
        got = st.stylize(photo, style, look_size=96, preserve_color=preserve_color)
        assert got.shape == photo.shape
        if not preserve_color:
            assert torch.equal(got, expected)
    assert (expected - st.stylize(photo, style)).abs().max() > 1e-3  # not what stylizing at full size gives
    assert torch.equal(st.stylize(photo, style, look_size=200), st.stylize(photo, style))  # no larger than asked: off
    with pytest.raises(ValueError, match="look_size must be >= 0"):
        st.stylize(photo, style, look_size=-8)


@pytest.mark.slow
def test_the_style_scale_figure_shows_the_same_square_of_each_result(encoder, tmp_path, capsys):
    varied = grey_decoder()  # mid-grey, its variation (±0.05) made visible, so that misplaced squares differ
    [m for m in varied.modules() if isinstance(m, torch.nn.Conv2d)][-1].weight.data.mul_(30)
    decoder = tmp_path / "varied.safetensors"
    save_decoder(varied, decoder, encoder.identity, {"note": "untrained, for tests"})
    photo, painting = ROOT / "examples/content/chelsea.jpg", ROOT / "examples/style/munch_the_scream.jpg"  # photo: 451×300
    out = tmp_path / "figure.png"
    args = ["--content", str(photo), "--style", str(painting), "--style-size", "64", "--look-size", "64",
            "--crop", "96", "--at", "0.5", "0.5", "--decoder", str(decoder), "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert script("style_scale_example").main(args) == 0
    assert "its 96-px square at (178, 102)" in capsys.readouterr().out
    figure = torch.from_numpy(np.array(Image.open(out).convert("RGB"))).permute(2, 0, 1).float() / 255
    overview_width = round(451 * 96 / 300)
    assert figure.shape == (3, 96, overview_width + 3 * (96 + 8))
    overview, as_is, looked, enlarged = (figure[:, :, x : x + w] for x, w in (
        (0, overview_width), (overview_width + 8, 96), (overview_width + 112, 96), (overview_width + 216, 96)))  # fmt: skip

    st = StyleTransfer.load(decoder=str(decoder), device="cpu")
    full = Request(ImageSource.file(photo), (ImageSource.file(painting),), content_size=0, style_size=64)
    small = F.interpolate(stylize(st, replace(full, content_size=64)).rgb, size=(300, 451), mode="bicubic", align_corners=False)
    results = [stylize(st, full).rgb, stylize(st, replace(full, look_size=64)).rgb, small.clamp(0, 1)]
    for panel, result in zip((as_is, looked, enlarged), results):
        assert (panel - result[0, :, 102:198, 178:274]).abs().max() <= 0.5 / 255 + 1e-6  # the PNG's rounding only
        assert (panel - result[0, :, 106:202, 178:274]).abs().max() > 2 / 255  # a square 4 px lower would not do
    assert min((a - b).abs().max() for a, b in ((as_is, looked), (looked, enlarged), (as_is, enlarged))) > 4 / 255
    red = torch.tensor([1.0, 0, 0]).view(3, 1)
    assert overview[:, 33, 57:88].eq(red).all()  # the outline's top: the square (178, 102) to (274, 198) times 96/300


@pytest.mark.parametrize(
    "argv, code, said",
    [(["--crop", "400"], 1, "--crop 400 is larger than the photo (451×300)"),
     (["--at", "1.5", "0"], 2, "--at takes fractions in [0, 1]"),
     (["--out", "figure.gif"], 2, "use one of .jpeg, .jpg, .png, .webp")],
)  # fmt: skip
def test_the_style_scale_figure_refuses_impossible_settings_on_one_line(argv, code, said, tmp_path, monkeypatch, capsys):
    args = ["--content", str(ROOT / "examples/content/chelsea.jpg"), "--out", str(tmp_path / "f.png"), *argv]
    status, err = run_main(script("style_scale_example"), monkeypatch, capsys, *args)
    assert status == code and said in err.splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "f.png").exists()
