"""The AdaIN training losses against values computed by hand."""

import math

import pytest
import torch

from adain.model.functional import EPS
from adain.training.losses import STYLE_LAYERS, content_loss, statistics_mse, style_loss


def test_content_loss_is_the_mean_squared_error_to_the_target():
    output = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    target = torch.tensor([1.0, 0.0, 0.0, 2.0]).reshape(1, 1, 2, 2)
    # (0² + 2² + 3² + 2²) / 4
    assert content_loss(output, target).item() == pytest.approx(17 / 4)


def test_statistics_mse_by_hand():
    # one sample, two channels, two positions each
    output = torch.tensor([[[[1.0, 3.0]], [[0.0, 0.0]]]])  # means 2, 0; variances 1, 0
    style = torch.tensor([[[[2.0, 2.0]], [[1.0, 5.0]]]])  # means 2, 3; variances 0, 4
    mean_term = ((2 - 2) ** 2 + (0 - 3) ** 2) / 2
    std_term = ((math.sqrt(1 + EPS) - math.sqrt(EPS)) ** 2 + (math.sqrt(EPS) - math.sqrt(4 + EPS)) ** 2) / 2
    assert statistics_mse(output, style).item() == pytest.approx(mean_term + std_term, rel=1e-6)


def test_style_loss_sums_the_four_layers():
    torch.manual_seed(0)
    output = {layer: torch.randn(2, 4, 3, 3) for layer in STYLE_LAYERS}
    style = {layer: torch.randn(2, 4, 5, 5) * 2 + 1 for layer in STYLE_LAYERS}
    expected = sum(statistics_mse(output[layer], style[layer]).item() for layer in STYLE_LAYERS)
    assert style_loss(output, style).item() == pytest.approx(expected, rel=1e-6)
    assert set(STYLE_LAYERS) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1"}


def test_style_loss_ignores_where_things_are():
    """Only channel statistics count: a spatially shuffled copy of the style has zero style loss."""
    torch.manual_seed(1)
    style = {layer: torch.rand(1, 3, 4, 4) for layer in STYLE_LAYERS}
    shuffled = {layer: f.flatten(2)[..., torch.randperm(16)].reshape(1, 3, 4, 4) for layer, f in style.items()}
    assert style_loss(shuffled, style).item() == pytest.approx(0.0, abs=1e-10)
    assert style_loss({k: v + 0.5 for k, v in shuffled.items()}, style).item() == pytest.approx(4 * 0.25, rel=1e-5)


def test_losses_give_gradients_to_the_output_only():
    target = torch.rand(1, 2, 3, 3)
    output = torch.rand(1, 2, 3, 3, requires_grad=True)
    content_loss(output, target).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert not target.requires_grad
