"""The optimised inference path computes the same function as the plain reference network."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from reference_layouts import adain_decoder, adain_vgg
from torch import nn

from adain.core.allocator import keep_freed_memory
from adain.media.image_io import load_image
from adain.model.decoder import Decoder, upsample_conv
from adain.model.style_transfer import StyleTransfer
from compare.benchmark import PlainAdaIN

ROOT = Path(__file__).resolve().parent.parent


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(1, 5, 1, 1), (2, 5, 3, 7), (1, 5, 8, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_conv_is_conv_of_the_upsampled_input(shape, channels_last):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 4, 3, padding=1, padding_mode="reflect")
    x = rand(*shape) - 0.5
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    got = upsample_conv(x, conv)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last and shape[-1] > 1 else torch.contiguous_format)


def test_folded_decoder_matches_the_plain_one():
    torch.manual_seed(0)
    dec = Decoder()
    feat = rand(2, 512, 3, 5)
    torch.testing.assert_close(dec.forward_folded(feat), dec(feat), atol=1e-6, rtol=1e-5)


def test_encoder_keeps_the_callers_layout(encoder):
    x = rand(1, 3, 24, 32)
    plain = encoder(x, ["relu2_1", "relu4_1"])
    fast = encoder(x.contiguous(memory_format=torch.channels_last), ["relu2_1", "relu4_1"])
    for layer in plain:
        assert plain[layer].is_contiguous() and fast[layer].is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(fast[layer], plain[layer], atol=1e-3, rtol=1e-4)  # features reach ~1e3


def test_plain_reference_matches_style_transfer_for_both_layouts(tmp_path, encoder):
    torch.manual_seed(0)
    torch.save(adain_vgg().state_dict(), tmp_path / "vgg_normalised.pth")  # reflection padding, ceil-mode pooling
    torch.save(adain_decoder().state_dict(), tmp_path / "decoder.pth")
    reflect = StyleTransfer.load(tmp_path / "decoder.pth", vgg=tmp_path / "vgg_normalised.pth", device="cpu")
    zeros = StyleTransfer(encoder, Decoder())
    content, style = rand(2, 3, 32, 40), rand(1, 3, 24, 24, seed=1)
    for st in (reflect, zeros):
        plain = PlainAdaIN(st.encoder, st.decoder)
        code = st.encode_style(style)
        mean, std = plain.encode_style(style)
        torch.testing.assert_close(mean, code.mean, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(plain(content, mean, std), st(content, [code]), atol=1e-4, rtol=1e-4)


def convolution_inputs(model: nn.Module) -> list[tuple[torch.dtype, torch.dtype, bool]]:
    """After each call of ``model``: (input dtype, weight dtype, input channels-last) of every 3×3
    convolution module it ran (the folded decoder's convolutions call F.conv2d, so are not seen)."""
    seen = []
    for conv in model.modules():
        if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3):
            def hook(module, args, seen=seen):
                x = args[0]
                seen.append((x.dtype, module.weight.dtype, x.is_contiguous(memory_format=torch.channels_last)))
            conv.register_forward_pre_hook(hook)
    return seen


def test_reduced_precision_keeps_one_dtype_and_layout_and_leaves_the_shared_encoder_alone(encoder):
    st = StyleTransfer(encoder, Decoder(), "bf16")
    seen = convolution_inputs(st.reduced)
    code = st.encode_style(rand(1, 3, 32, 32, seed=1))
    out = st(rand(1, 3, 32, 48), [code], alpha=0.7)
    assert len(seen) == 9 + 9 + 6  # the style's and the content's 9 encoder convolutions, 6 unfolded decoder ones
    assert set(seen) == {(torch.bfloat16, torch.bfloat16, True)}
    assert code.mean.dtype == code.std.dtype == torch.float32 and out.dtype == torch.float32
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}  # Gatys and the metrics share it


def test_reduced_precision_stays_close_to_fp32(encoder):
    """bf16 has an 8-bit mantissa (~0.4 % per rounding); through 9 + 9 layers the features and the
    decoded image stay within a few per cent of the fp32 ones (measured: 0.8 % and 0.3 %)."""
    torch.manual_seed(0)
    decoder = Decoder()
    image = load_image(ROOT / "examples/content/chelsea.jpg", 64).rgb
    fp32, bf16 = StyleTransfer(encoder, decoder), StyleTransfer(encoder, decoder, "bf16")
    features = [st._relu4_1(image).float() for st in (fp32, bf16)]
    decoded = [st._decode(f).float() for st, f in zip((fp32, bf16), features)]
    for exact, reduced in (features, decoded):
        assert (reduced - exact).norm() < 0.03 * (exact - exact.mean()).norm()


@pytest.mark.slow
def test_compiled_encoder_and_decoder_are_one_graph_each_and_compute_the_same(encoder, monkeypatch):
    """``fullgraph=True`` fails on any graph break. The graphs go through AOTAutograd (what inductor
    compiles) but run eagerly: inductor's own code generation takes ~80 s here; it was checked by
    hand on this test's inputs (largest difference from eager 1e-8)."""
    real, modes = torch.compile, []

    def traced(fn, *, mode, fullgraph, dynamic):
        modes.append(mode)
        return real(fn, backend="aot_eager", fullgraph=fullgraph, dynamic=dynamic)

    monkeypatch.setattr(torch, "compile", traced)
    torch._dynamo.reset()
    torch.manual_seed(0)
    decoder = Decoder()
    compiled, eager = StyleTransfer(encoder, decoder, compile="max-autotune"), StyleTransfer(encoder, decoder)
    assert modes == ["max-autotune", "max-autotune"] and compiled.compile_mode == "max-autotune"
    content, style = rand(2, 3, 40, 56), rand(1, 3, 32, 32, seed=1)
    code = eager.encode_style(style)
    torch.testing.assert_close(compiled.encode_style(style).std, code.std)
    torch.testing.assert_close(compiled(content, [code], alpha=0.6), eager(content, [code], alpha=0.6))
    with pytest.raises(ValueError, match="compile must be one of"):
        StyleTransfer(encoder, decoder, compile="fast")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_allocator_setting_is_accepted():
    assert keep_freed_memory() and keep_freed_memory()  # idempotent


KEEP_THEN_RELEASE = """
import torch
from adain.core.allocator import keep_freed_memory, release_freed_memory

def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024

keep_freed_memory()
start = rss_mb()
block = torch.ones(200 * 2**20 // 4)  # 200 MB, touched
del block
kept = rss_mb() - start
released = release_freed_memory()
print(kept, rss_mb() - start, released)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_memory_kept_for_speed_is_given_back_on_release():
    proc = subprocess.run([sys.executable, "-c", KEEP_THEN_RELEASE], capture_output=True, text=True, cwd=ROOT)
    kept, after, released = proc.stdout.split()
    assert float(kept) > 150 and released == "True"  # freed, yet kept by the allocator
    assert float(after) < 50  # back to the system
