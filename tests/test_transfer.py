"""The Python API (StyleTransfer.stylize) and colour preservation."""

import pytest
import torch
from PIL import Image

from adain import StyleCode
from adain.media.color import match_color, restore_chroma, rgb_to_ycbcr, ycbcr_to_rgb


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_pil_in_pil_out_keeps_size_and_alpha(st):
    content = Image.new("RGBA", (37, 29), (200, 30, 40, 128))
    out = st.stylize(content, Image.fromarray((rand(20, 24, 3).numpy() * 255).astype("uint8")))
    assert isinstance(out, Image.Image) and out.size == (37, 29) and out.mode == "RGBA"
    assert out.getchannel("A").getextrema() == (128, 128)


def test_tensor_in_tensor_out(st):
    style = rand(3, 24, 24, seed=1)
    assert st.stylize(rand(3, 20, 30), style).shape == (3, 20, 30)
    assert st.stylize(rand(2, 3, 20, 30), style).shape == (2, 3, 20, 30)


def test_encoded_style_is_reusable_and_equivalent(st):
    content, style = rand(1, 3, 32, 32), rand(1, 3, 40, 40, seed=2)
    code = st.encode_style(style)
    assert isinstance(code, StyleCode) and code.mean.shape == (1, 512, 1, 1)
    torch.testing.assert_close(st.stylize(content, code), st.stylize(content, style))


def test_alpha_zero_reconstructs_from_content_features(st):
    content = rand(1, 3, 32, 40)
    out = st.stylize(content, rand(1, 3, 32, 32, seed=3), alpha=0.0)
    expected = st.decoder(st.encoder(content)["relu4_1"]).clamp(0, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_weights_and_mask_reach_the_targets(st):
    content, s1, s2 = rand(1, 3, 32, 32), rand(1, 3, 32, 32, seed=4), rand(1, 3, 32, 32, seed=5) * 0.2
    only_first = st.stylize(content, [s1, s2], style_weights=[1.0, 0.0])
    torch.testing.assert_close(only_first, st.stylize(content, s1))
    white = st.stylize(content, [s1, s2], mask=torch.ones(32, 32))
    black = st.stylize(content, [s1, s2], mask=torch.zeros(32, 32))
    torch.testing.assert_close(white, st.stylize(content, s1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(black, st.stylize(content, s2), atol=1e-5, rtol=1e-5)


def test_a_pil_mask_is_read_as_the_command_line_and_the_app_read_it(st):
    content, s1, s2 = rand(1, 3, 32, 32), rand(1, 3, 32, 32, seed=4), rand(1, 3, 32, 32, seed=5) * 0.2
    green = Image.new("RGB", (32, 32), (0, 255, 0))  # channel mean 1/3: black; Pillow's luma 0.59 would say white
    torch.testing.assert_close(st.stylize(content, [s1, s2], mask=green), st.stylize(content, [s1, s2], mask=torch.zeros(32, 32)))


def test_bad_api_arguments(st):
    with pytest.raises(ValueError, match="alpha"):
        st.stylize(rand(3, 16, 16), rand(3, 16, 16), alpha=1.5)
    with pytest.raises(ValueError, match="preservation"):
        st.stylize(rand(3, 16, 16), rand(3, 16, 16), preserve_color="sepia")
    with pytest.raises(ValueError, match="exactly two"):
        st.stylize(rand(3, 16, 16), rand(3, 16, 16), mask=torch.ones(16, 16))
    with pytest.raises(ValueError, match="exactly two"):  # the network's own call checks its arguments too
        st(rand(1, 3, 16, 16), [st.encode_style(rand(3, 16, 16))], mask=torch.ones(1, 1, 16, 16))
    with pytest.raises(ValueError, match="tensors"):
        st.stylize(rand(1, 16, 16), rand(3, 16, 16))
    for bad in (float("nan"), float("inf")):  # a NaN weight used to give an all-black image
        with pytest.raises(ValueError, match="finite"):
            st.stylize(rand(3, 16, 16), [rand(3, 16, 16), rand(3, 16, 16)], style_weights=[bad, 1.0])
        with pytest.raises(ValueError, match="alpha"):
            st.stylize(rand(3, 16, 16), rand(3, 16, 16), alpha=bad)


def test_coral_matches_mean_and_covariance():
    source, target = rand(1, 3, 30, 30, seed=6) * 0.5, rand(1, 3, 20, 25, seed=7) * 0.3 + 0.4
    out = match_color(source, target)

    def stats(x):
        flat = x.double().flatten(2)[0]
        return flat.mean(1), torch.cov(flat, correction=0)

    for a, b in zip(stats(out), stats(target)):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-2)


def test_luminance_method_keeps_content_chroma(st):
    content = rand(1, 3, 32, 32, seed=8)
    out = st.stylize(content, rand(1, 3, 32, 32, seed=9), preserve_color="luminance")
    # Where nothing was clipped, the output's chroma is the content's.
    chroma_out, chroma_in = rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(content)[:, 1:]
    unclipped = ((out > 0.01) & (out < 0.99)).all(1, keepdim=True).expand_as(chroma_out)
    assert unclipped.float().mean() > 0.2
    torch.testing.assert_close(chroma_out[unclipped], chroma_in[unclipped], atol=3e-3, rtol=0)


def test_ycbcr_round_trip():
    x = rand(1, 3, 8, 8, seed=10)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(restore_chroma(x, x), x, atol=1e-5, rtol=1e-5)


def test_coral_preservation_runs_per_image(st):
    out = st.stylize(rand(2, 3, 24, 24, seed=11), rand(3, 24, 24, seed=12), preserve_color=True)
    assert out.shape == (2, 3, 24, 24)


def test_tensors_that_are_no_images_in_0_1_are_refused(st):
    content = rand(3, 16, 16)
    one_nan = content.clone()
    one_nan[0, 0, 0] = float("nan")  # used to make the whole output NaN
    cases = [((content * 255).to(torch.uint8), "torch.uint8"), (content * 255, "values from 0"), (one_nan, "nan"),
             (torch.rand(3, 0, 16), "empty")]  # fmt: skip
    for bad, problem in cases:
        for args in ((bad, content), (content, bad)):  # as the content, as a style
            with pytest.raises(ValueError, match=f"in \\[0, 1\\]; got .*{problem}"):
                st.stylize(*args)


def test_a_batch_of_styles_in_one_tensor_is_refused(st):
    with pytest.raises(ValueError, match="one image"):  # used to use the first and drop the others
        st.stylize(rand(3, 16, 16), rand(2, 3, 16, 16, seed=1))


def test_an_rgb_tensor_mask_is_read_as_a_pil_mask_is_and_bad_masks_are_refused(st):
    content, s1, s2 = rand(1, 3, 32, 32), rand(1, 3, 32, 32, seed=4), rand(1, 3, 32, 32, seed=5) * 0.2
    green = torch.zeros(3, 32, 32)
    green[1] = 1  # channel mean 1/3: black
    torch.testing.assert_close(st.stylize(content, [s1, s2], mask=green), st.stylize(content, [s1, s2], mask=torch.zeros(32, 32)))
    nan = torch.ones(32, 32)
    nan[0, 0] = float("nan")
    for bad in (torch.ones(32, 32).numpy(), torch.ones(1, 2, 32, 32), torch.ones(0, 32), nan, torch.full((32, 32), 255)):
        with pytest.raises(ValueError, match="^a mask must be"):
            st.stylize(content, [s1, s2], mask=bad)
    for contents, masks in ((1, 2), (3, 2)):  # one content took the first of two outputs; three failed in torch
        with pytest.raises(ValueError, match=f"^{masks} masks for {contents} content image"):
            st.stylize(rand(contents, 3, 32, 32), [s1, s2], mask=torch.ones(masks, 1, 32, 32))
    assert st.stylize(rand(2, 3, 32, 32), [s1, s2], mask=torch.ones(2, 1, 32, 32)).shape == (2, 3, 32, 32)  # one each


def test_style_codes_are_cached_per_file_version_and_per_encoder(st, tmp_path):
    from adain.jobs.image import StyleCodes
    from adain.jobs.request import ImageSource
    from adain.model.style_transfer import StyleTransfer

    codes, path = StyleCodes(), tmp_path / "style.png"
    Image.new("RGB", (32, 32), (250, 20, 20)).save(path)
    red = codes.get(st, ImageSource.file(path), 32, False, 10**6, 10**6)
    Image.new("RGB", (32, 40), (20, 20, 250)).save(path)  # the same file, another picture
    blue = codes.get(st, ImageSource.file(path), 32, False, 10**6, 10**6)
    assert not torch.equal(red.mean, blue.mean)
    bf16 = StyleTransfer(st.encoder, st.decoder, "bf16")
    code = codes.get(bf16, ImageSource.file(path), 32, False, 10**6, 10**6)  # not the fp32 model's code
    torch.testing.assert_close(code.mean, bf16.encode_style(Image.open(path)).mean, atol=0, rtol=0)


@pytest.mark.parametrize("name, message", [
    ("gpu", "unknown device 'gpu'; use auto, cpu, cuda, cuda:N or mps"),
    ("meta", "device 'meta' is not supported; use auto, cpu, cuda, cuda:N or mps"),
])  # fmt: skip
def test_a_device_name_torch_does_not_know_or_we_do_not_run_on_is_one_line(name, message):
    from adain.core.device import resolve_device

    with pytest.raises(ValueError) as info:
        resolve_device(name)
    assert str(info.value) == message
    assert resolve_device("cpu") == torch.device("cpu")
