"""Gatys optimisation: the losses against hand-computed values, the optimisation loop, the API."""

import inspect
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
import yaml

from adain.media.color import rgb_to_ycbcr
from adain.model.style_transfer import StyleTransfer
from gatys import DEFAULTS, GatysConfig, GatysObjective, load_config, stylize
from gatys.losses import content_loss, gram_matrix, style_layer_loss, style_loss, style_target, tv_loss
from gatys.optimize import initial_image

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"relu1_1": 0.5, "relu2_1": 0.5}  # shallow layers keep the CPU tests fast


def image(h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


SETTINGS = {f.name for f in fields(GatysConfig)}


def settings(**changes) -> GatysConfig:
    """The defaults with ``changes``; ``lr`` sets the chosen optimiser's step size."""
    lr = changes.pop("lr", None)
    return replace(DEFAULTS, **changes).with_lr(lr)


def shallow(content, styles, encoder=None, **kwargs):
    """``stylize`` on the two shallow layers, quietly: fast enough for CPU tests. Keyword arguments
    that are :class:`GatysConfig` fields (and ``lr``) go into the config, the others to ``stylize``."""
    chosen = {k: v for k, v in kwargs.items() if k in SETTINGS | {"lr"}}
    rest = {k: v for k, v in kwargs.items() if k not in chosen}
    config = settings(**{"content_layer": "relu2_1", "style_layers": tuple(LAYERS), **chosen})
    return stylize(content, styles, config, encoder=encoder, progress=False, **rest)


def smooth(h: int = 32, w: int = 40) -> torch.Tensor:
    """A photo-like content: smooth gradients, no texture."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, (x + y) / 2])[None]


# -- losses, by hand --------------------------------------------------------------------


def test_gram_matrix_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)  # N=2 channels, M=2 positions
    assert torch.equal(gram_matrix(f), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]))


def test_content_loss_by_hand():
    f, p = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3), torch.tensor([1.0, 0.0, 6.0]).reshape(1, 1, 1, 3)
    assert content_loss(f, p).item() == 0.5 * (0 + 4 + 9)


def test_style_layer_loss_by_hand():
    gram, target = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]), torch.tensor([[[1.0, 10.0], [10.0, 25.0]]])
    # Σ(G − A)² = 16 + 1 + 1 + 0 = 18; 4·N²·M² with N = 2 channels, M = 3 positions = 144
    assert style_layer_loss(gram, target, positions=3).item() == pytest.approx(18 / 144)


def test_style_target_matches_per_position_correlations():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    same_size = style_target(f, positions=2)
    twice_as_large = style_target(torch.cat([f, f], dim=-1), positions=2)  # the same texture, 4 positions
    assert torch.equal(same_size, gram_matrix(f)) and torch.equal(twice_as_large, gram_matrix(f))


def test_style_loss_is_the_weighted_sum_of_layers():
    feats = {"a": image(4, 4, 1)[:, :2], "b": image(2, 2, 2)}
    targets = {"a": torch.zeros(1, 2, 2), "b": torch.ones(1, 3, 3)}
    expected = 0.25 * style_layer_loss(gram_matrix(feats["a"]), targets["a"], 16) + 2.0 * style_layer_loss(
        gram_matrix(feats["b"]), targets["b"], 4
    )
    assert style_loss(feats, targets, {"a": 0.25, "b": 2.0}).item() == pytest.approx(expected.item())


def test_tv_loss_by_hand():
    img = torch.tensor([[0.0, 1.0], [1.0, 3.0]]).reshape(1, 1, 2, 2)
    # vertical: (1−0)² + (3−1)² = 5; horizontal: (1−0)² + (3−1)² = 5
    assert tv_loss(img).item() == 10.0
    assert tv_loss(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0


# -- the objective ----------------------------------------------------------------------


def objective(encoder, content, styles, weights, style_weight=1.0):
    return GatysObjective(
        encoder, content, styles, weights, content_layer="relu2_1", layer_weights=LAYERS,
        content_weight=1.0, style_weight=style_weight, tv_weight=0.5,
    )  # fmt: skip


def test_objective_terms_and_style_blend(encoder):
    content, a, b, x = image(seed=0), image(seed=1), image(24, 36, seed=2), image(seed=3)
    blended = objective(encoder, content, [a, b], [0.25, 0.75], style_weight=10.0)(x)
    only_a, only_b = objective(encoder, content, [a], [1.0])(x), objective(encoder, content, [b], [1.0])(x)
    assert blended["style"].item() == pytest.approx(0.25 * only_a["style"].item() + 0.75 * only_b["style"].item(), rel=1e-5)
    feats = encoder(x, ["relu2_1"])["relu2_1"]
    expected_content = content_loss(feats, encoder(content, ["relu2_1"])["relu2_1"])
    assert blended["content"].item() == pytest.approx(expected_content.item(), rel=1e-5)
    assert blended["tv"].item() == pytest.approx(tv_loss(x).item())
    total = blended["content"] + 10.0 * blended["style"] + 0.5 * blended["tv"]
    assert blended["total"].item() == pytest.approx(total.item(), rel=1e-5)
    assert objective(encoder, content, [a], [1.0])(content)["content"].item() == 0.0


def test_bf16_runs_a_bf16_copy_of_the_encoder_and_keeps_the_losses_fp32(encoder):
    content, style, x = image(seed=0), image(seed=1), image(seed=3)
    exact = objective(encoder, content, [style], [1.0])
    reduced = GatysObjective(
        encoder, content, [style], [1.0], content_layer="relu2_1", layer_weights=LAYERS,
        content_weight=1.0, style_weight=1.0, tv_weight=0.5, precision="bf16",
    )  # fmt: skip
    assert {p.dtype for p in reduced.network.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}  # the shared encoder is left alone
    got, expected = reduced(x.requires_grad_(True)), exact(x)
    for term in ("content", "style", "total"):  # bf16 features, fp32 Gram matrices and sums
        assert got[term].dtype == torch.float32 and got[term].item() == pytest.approx(expected[term].item(), rel=0.03)
    got["total"].backward()
    assert x.grad.dtype == torch.float32 and x.grad.abs().sum() > 0
    totals = [h["total"] for h in shallow(smooth(), style, encoder, steps=6, precision="bf16").history]
    assert totals[-1] < 0.7 * totals[0]
    with pytest.raises(ValueError, match="Gatys runs in fp32 or bf16, not fp16"):
        shallow(smooth(), style, encoder, steps=1, precision="fp16")


def test_targets_are_computed_once(encoder, monkeypatch):
    calls = []
    forward = type(encoder).forward
    monkeypatch.setattr(type(encoder), "forward", lambda self, x, layers: calls.append(x.shape) or forward(self, x, layers))
    result = shallow(image(), [image(seed=1), image(seed=2)], encoder, steps=3, optimizer="adam")
    assert len(result.history) == 4
    assert len(calls) == 1 + 2 + 3 + 1  # content and each style once, then one pass per step and one for the final image


def test_encoder_runs_no_convolution_past_the_deepest_layer(encoder, monkeypatch):
    ran = set()
    for i, conv in enumerate(encoder.convs):
        original = conv.forward
        monkeypatch.setattr(conv, "forward", lambda x, original=original, i=i: ran.add(i) or original(x))
    shallow(image(), image(seed=1), encoder, steps=1)
    assert ran == {0, 1, 2}  # relu1_1, relu1_2, relu2_1


# -- the optimisation -------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimizers_lower_the_total_loss(encoder, optimizer):
    result = shallow(smooth(), image(seed=1), encoder, steps=6, optimizer=optimizer)
    totals = [h["total"] for h in result.history]
    assert totals[-1] < 0.7 * totals[0]
    assert result.image.shape == (1, 3, 32, 40) and 0 <= result.image.min() and result.image.max() <= 1


def test_large_style_weight_drives_the_style_loss_down(encoder):
    result = stylize(smooth(), image(seed=1), settings(steps=10, style_weight=1e6), encoder=encoder, progress=False)
    assert result.history[-1]["style"] < 0.1 * result.history[0]["style"]
    assert result.history[-1]["content"] > 0  # it left the content image


def test_history_snapshots_and_callback(encoder):
    seen = []
    result = shallow(smooth(), image(seed=1), encoder, steps=4, save_every=2, callback=lambda *snapshot: seen.append(snapshot))
    assert [h["step"] for h in result.history] == [0, 1, 2, 3, 4]
    assert all(set(h) == {"step", "content", "style", "tv", "total", "seconds"} for h in result.history)
    assert [h["seconds"] for h in result.history] == sorted(h["seconds"] for h in result.history)
    assert [s for s, _ in seen] == [s for s, _ in result.snapshots] == [2, 4]
    assert torch.equal(result.snapshots[-1][1], result.image)


def test_same_seed_same_image(encoder):
    run = lambda seed: shallow(smooth(), image(seed=1), encoder, steps=2, init="noise", seed=seed).image
    first, again, other = run(7), run(7), run(8)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_inits(encoder):
    content, styles = smooth(), [image(20, 20, seed=1), image(30, 30, seed=2)]
    assert torch.equal(initial_image("content", content, styles, [0.5, 0.5]), content)
    noise = initial_image("noise", content, styles, [0.5, 0.5], seed=1)
    assert noise.shape == content.shape and 0.4 < noise.mean() < 0.6 and noise.std() > 0.25
    from_style = initial_image("style", content, styles, [0.2, 0.8])  # the heavier style, resized
    assert from_style.shape == content.shape and torch.allclose(from_style.mean(), styles[1].mean(), atol=0.02)


def test_adain_init_starts_from_the_fast_output(decoder_file):
    model = StyleTransfer.load(decoder_file, device="cpu")
    content, style = smooth(), image(seed=1)
    fast = model.stylize(content, style)
    run = lambda steps: shallow(content, style, steps=steps, init="adain", adain_model=model)
    start, moved = run(0), run(2)
    assert torch.equal(start.image, fast)
    assert moved.history[0] == start.history[0] | {"seconds": 0.0} and not torch.equal(moved.image, fast)


def test_luminance_preservation_keeps_the_content_colours(encoder):
    content = 0.25 + 0.5 * smooth()  # colours well inside the gamut, so restoring them needs no clipping
    out = shallow(content, image(seed=1), encoder, steps=3, preserve_color="luminance").image
    change = (rgb_to_ycbcr(out) - rgb_to_ycbcr(content)).abs().mean(dim=(0, 2, 3))
    assert change[0] > 0.005 and change[1:].max() < 1e-4  # luminance stylized, chrominance the content's


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"init": "zeros"}, "unknown init"),
        ({"init": "adain"}, "needs adain_model"),
        ({"style_layers": ("relu9_1",)}, "unknown or no VGG19 layers"),
        ({"layer_weights": (1.0,)}, "one finite, non-negative weight per style layer"),
        ({"layer_weights": (float("nan"),) * 5}, "one finite, non-negative weight per style layer"),
        ({"lr": 0.0}, "lr must be finite and > 0"),
        ({"lr": float("inf")}, "lr must be finite and > 0"),
        ({"style_weight": -1.0}, "weights must be finite and >= 0"),
        ({"content_weight": float("nan")}, "weights must be finite and >= 0"),
        ({"tv_weight": float("inf")}, "weights must be finite and >= 0"),
        ({"style_weights": [1.0, 2.0]}, "style weights for 1 styles"),
    ],
)
def test_bad_arguments(encoder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers = {"content_layer": DEFAULTS.content_layer, "style_layers": DEFAULTS.style_layers}
        shallow(smooth(), image(seed=1), encoder, steps=1, **layers | kwargs)


def test_too_small_image_is_refused(encoder):
    with pytest.raises(ValueError, match="too small"):
        stylize(smooth(12, 40), image(seed=1), settings(steps=1), encoder=encoder, progress=False)


# -- configuration ----------------------------------------------------------------------


def test_yaml_mirrors_the_defaults(tmp_path):
    assert load_config(ROOT / "configs" / "gatys.yaml") == DEFAULTS
    assert inspect.signature(stylize).parameters["config"].default is DEFAULTS
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"steps": 10, "stepz": 3}))
    with pytest.raises(ValueError, match="stepz"):
        load_config(tmp_path / "bad.yaml")


def test_a_config_file_keeps_the_other_step_sizes_and_reads_1e6_as_a_number(tmp_path):
    (tmp_path / "mine.yaml").write_text("learning_rates: {adam: 0.1}\nstyle_weight: 1e6\nlayer_weights: [2e-1, 1, 1, 1, 1]\n")
    config = load_config(tmp_path / "mine.yaml")
    assert (config.lr("lbfgs"), config.lr("adam")) == (DEFAULTS.lr("lbfgs"), 0.1)  # the default optimiser keeps its rate
    assert config.style_weight == 1e6 and config.layer_weights == (0.2, 1, 1, 1, 1)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"learning_rates": {"adam": 0.1}}, "learning_rates has no step size for the optimizer 'lbfgs'"),
        ({"learning_rates": {"sgd": 0.1, "lbfgs": 1.0}}, "learning_rates must map optimizers"),
        ({"style_layers": "relu1_1"}, "style_layers must be a list of VGG19 layers, got 'relu1_1'"),
        ({"content_layer": "conv4_2"}, r"unknown or no VGG19 layers \['conv4_2'\]"),
        ({"style_layers": ()}, r"unknown or no VGG19 layers \[\]"),
        ({"layer_weights": 1.0}, "one finite, non-negative weight per style layer"),
        ({"layer_weights": ("1",) * 5}, "one finite, non-negative weight per style layer"),
        ({"steps": 2.5}, "steps must be >= 0"),
    ],
)
def test_impossible_settings_are_refused_when_the_config_is_made(settings, message):
    with pytest.raises(ValueError, match=message):
        GatysConfig(**settings)
