"""One request, one result: the Python API, the command line and the HTTP API give byte-identical
images for the same request, mask and crop included (they share adain.jobs.image.stylize)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import grey_decoder
from fastapi.testclient import TestClient
from PIL import Image

import nst.stylize as infer
from adain.app import Limits, Stylist, create_app
from adain.app.gallery import Gallery
from adain.jobs.image import stylize
from adain.jobs.request import ImageSource, Request
from adain.media.image_io import encode_image
from adain.model.decoder_file import save_decoder
from adain.model.style_transfer import StyleTransfer


@pytest.fixture(scope="module")
def lively_decoder(tmp_path_factory, encoder):
    """:func:`conftest.grey_decoder` as a file, so images differ visibly."""
    path = tmp_path_factory.mktemp("decoder") / "lively.safetensors"
    save_decoder(grey_decoder(), path, encoder.identity)
    return path


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)

    def save(name, size, mode="RGB"):
        shape = (size[1], size[0], 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).convert(mode).save(tmp_path / name)
        return tmp_path / name

    mask = np.zeros((48, 64), np.uint8)
    mask[:, :20] = 255  # the left third: cropping keeps some of it, squashing would move it
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return {"content": save("photo.png", (64, 48)), "styles": [save("a.png", (40, 40)), save("b.jpg", (50, 36))],
            "mask": tmp_path / "mask.png"}  # fmt: skip


def test_the_api_the_command_line_and_http_give_the_same_bytes(files, lively_decoder, tmp_path, monkeypatch):
    options = {"alpha": 0.7, "content_size": 40, "style_size": 32, "crop": True}
    model = StyleTransfer.load(lively_decoder)
    request = Request(
        ImageSource.file(files["content"]), tuple(ImageSource.file(s) for s in files["styles"]),
        mask=ImageSource.file(files["mask"]), **options,
    )  # fmt: skip
    out = stylize(model, request)
    api = encode_image(out.rgb, "PNG", out.alpha)
    assert out.rgb.shape == (1, 3, 40, 40) and out.rgb.std() > 0.005  # cropped, and not a flat image

    target = tmp_path / "cli.png"
    assert infer.main(["--content", str(files["content"]), "--style", *map(str, files["styles"]), "--mask", str(files["mask"]),
                       "--alpha", "0.7", "--content-size", "40", "--style-size", "32", "--crop", "--decoder", str(lively_decoder),
                       "--output", str(target), "--quiet"]) == 0  # fmt: skip
    assert target.read_bytes() == api

    client = TestClient(create_app(Stylist(model, Limits()), Gallery.load()))
    upload = [("content", ("photo.png", files["content"].read_bytes())), ("mask", ("mask.png", files["mask"].read_bytes()))]
    upload += [("style", (p.name, p.read_bytes())) for p in files["styles"]]
    answer = client.post("/api/stylize", files=upload, data={k: str(v).lower() for k, v in options.items()})
    assert answer.status_code == 200, answer.text
    assert answer.content == api

    squashed = Request(request.content, request.styles, mask=request.mask, **{**options, "crop": False})
    assert encode_image(stylize(model, squashed).rgb, "PNG") != api  # the crop reaches the mask too


def test_a_request_is_checked_once_on_its_way(files, lively_decoder, monkeypatch):
    """The rules are checked where a request is made, and its path to the output runs one way: the
    model renders it without checking them again (a Python API call checks them once, at its edge)."""
    import adain.core.checks
    import adain.jobs.request
    import adain.model.style_transfer

    calls = []
    real = adain.core.checks.check_stylize

    def counted(*args):
        calls.append(args)
        return real(*args)

    for module in (adain.jobs.request, adain.model.style_transfer):
        monkeypatch.setattr(module, "check_stylize", counted)
    model = StyleTransfer.load(lively_decoder)
    request = Request(ImageSource.file(files["content"]), tuple(ImageSource.file(s) for s in files["styles"]),
                      mask=ImageSource.file(files["mask"]), preserve_color="luminance", content_size=40, style_size=32)  # fmt: skip
    stylize(model, request)
    assert len(calls) == 1
    model.stylize(Image.open(files["content"]), [Image.open(s) for s in files["styles"]], alpha=0.5)
    assert len(calls) == 2
