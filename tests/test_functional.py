"""AdaIN and its statistics: exact properties of the pure functions."""

import pytest
import torch

from adain.core.checks import normalise_weights
from adain.model.functional import EPS, adain, blend_targets, mean_std, resize_mask


def feats(seed: int, shape=(2, 8, 12, 10), scale=1.0, shift=0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale + shift


def test_mean_std_matches_population_statistics():
    x = feats(0, scale=3.0, shift=2.0)
    mean, std = mean_std(x)
    flat = x.flatten(2)
    assert mean.shape == std.shape == (2, 8, 1, 1)
    torch.testing.assert_close(mean[..., 0, 0], flat.mean(2))
    torch.testing.assert_close(std[..., 0, 0], (flat.var(2, unbiased=False) + EPS).sqrt())


def test_adain_output_has_style_channel_statistics():
    content, style = feats(1, scale=0.5, shift=-1.0), feats(2, shape=(2, 8, 7, 9), scale=4.0, shift=3.0)
    out = adain(content, style)
    out_mean, out_std = mean_std(out, eps=0.0)
    style_mean, style_std = mean_std(style, eps=0.0)
    torch.testing.assert_close(out_mean, style_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_std, style_std, atol=1e-3, rtol=1e-3)


def test_adain_is_per_sample():
    content, style = feats(3), feats(4)
    out = adain(content, style)
    torch.testing.assert_close(out[1:], adain(content[1:], style[1:]))


def test_alpha_zero_gives_content_features_and_one_gives_adain():
    content, style = feats(5), feats(6, scale=2.0)
    stats = [mean_std(style)]
    torch.testing.assert_close(blend_targets(content, stats, alpha=0.0), content)
    torch.testing.assert_close(blend_targets(content, stats, alpha=1.0), adain(content, style))
    half = blend_targets(content, stats, alpha=0.5)
    torch.testing.assert_close(half, 0.5 * content + 0.5 * adain(content, style))


def test_interpolation_is_normalised_weighted_sum():
    content, s1, s2 = feats(7), feats(8, scale=2.0), feats(9, shift=5.0)
    out = blend_targets(content, [mean_std(s1), mean_std(s2)], weights=[3.0, 1.0])
    torch.testing.assert_close(out, 0.75 * adain(content, s1) + 0.25 * adain(content, s2))
    equal = blend_targets(content, [mean_std(s1), mean_std(s2)])
    torch.testing.assert_close(equal, 0.5 * adain(content, s1) + 0.5 * adain(content, s2))


def test_mask_regions_carry_their_own_style_statistics():
    content = feats(10, shape=(1, 8, 16, 16))
    s1, s2 = feats(11, shape=(1, 8, 9, 9), scale=3.0, shift=4.0), feats(12, shape=(1, 8, 9, 9), scale=0.2, shift=-2.0)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :24] = 1.0  # left 3/8 white (at feature size: 6 of 16 columns)
    out = blend_targets(content, [mean_std(s1), mean_std(s2)], mask=mask)
    left, right = out[..., :, :6], out[..., :, 6:]
    for region, style in ((left, s1), (right, s2)):
        torch.testing.assert_close(mean_std(region, eps=0.0)[0], mean_std(style, eps=0.0)[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(mean_std(region, eps=0.0)[1], mean_std(style, eps=0.0)[1], atol=2e-3, rtol=2e-3)


def test_resize_mask_is_binary():
    mask = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)
    small = resize_mask(mask, (3, 5))
    assert small.shape == (1, 1, 3, 5)
    assert set(small.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("weights", [[1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0], [float("inf"), 1.0]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError):
        normalise_weights(weights, 2)
