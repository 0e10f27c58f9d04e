"""Guided upsampling (adain.upsample) and the style-scale option built on it (look_size)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adain.imageio import load_image, resize
from adain.upsample import guided_upsample

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
    assert (expected - st.stylize(photo, style)).abs().max() > 1e-3  # not what stylising at full size gives
    assert torch.equal(st.stylize(photo, style, look_size=200), st.stylize(photo, style))  # no larger than asked: off
    with pytest.raises(ValueError, match="look_size must be >= 0"):
        st.stylize(photo, style, look_size=-8)
