"""Tiled AdaIN (StyleTransfer.forward(tile=…)): the same image as the untiled pass, seams included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adain.model.tiling as tiling
from adain.jobs.image import stylize
from adain.jobs.request import ImageSource, Request
from adain.media.image_io import load_image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return load_image(ROOT / "examples/content/chelsea.jpg", 200).rgb  # 301×200: no tile size divides it


@pytest.fixture(scope="module")
def styles(st) -> list:
    names = ("munch_the_scream", "van_gogh_irises")
    return [st.encode_style(load_image(ROOT / f"examples/style/{name}.jpg", 128).rgb) for name in names]


def difference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    return (a - b).abs().max().item(), (a - b).abs().mean().item()


@pytest.mark.slow
@pytest.mark.parametrize("tile", [64, 96, 136, 296])
def test_tiles_of_any_size_give_the_untiled_image(st, photo, styles, tile):
    untiled = st(photo, styles[:1])
    largest, mean = difference(st(photo, styles[:1], tile=tile), untiled)
    assert largest < 1e-5 and mean < 1e-7
    assert untiled.std() > 0.005  # the image has structure that seams would disturb


@pytest.mark.slow
def test_mask_weights_and_alpha_work_tiled(st, photo, styles):
    mask = (torch.arange(photo.shape[-1]) < photo.shape[-1] // 3).float().expand(1, 1, *photo.shape[-2:])
    for options in ({"mask": mask, "alpha": 0.7}, {"weights": [0.3, 0.7]}):
        largest, _ = difference(st(photo, styles, tile=64, **options), st(photo, styles, **options))
        assert largest < 1e-5, options


@pytest.mark.slow
def test_the_margin_is_what_makes_the_tiles_exact(st, photo, styles, monkeypatch):
    monkeypatch.setattr(tiling, "TILE_HALO", 32)  # half the measured field
    largest, _ = difference(st(photo, styles[:1], tile=64), st(photo, styles[:1]))
    assert largest > 1e-4  # seams: the tiles no longer see all the pixels their cores depend on


def test_a_tile_that_is_no_multiple_of_8_is_refused(st, photo, styles):
    with pytest.raises(ValueError, match="multiple of 8"):
        st(photo, styles[:1], tile=100)


@pytest.mark.slow
def test_requests_tile_above_max_tile_with_colour_preservation_too(st):
    content = ImageSource.file(ROOT / "examples/content/chelsea.jpg")
    style = (ImageSource.file(ROOT / "examples/style/munch_the_scream.jpg"),)
    for options in ({}, {"preserve_color": "coral"}):
        whole = stylize(st, Request(content, style, content_size=160, style_size=96, max_tile=0, **options)).rgb
        tiled = stylize(st, Request(content, style, content_size=160, style_size=96, max_tile=64, **options)).rgb
        assert (tiled - whole).abs().max() < 1e-5, options
    with pytest.raises(ValueError, match="max_tile must be 0 .never tile. or a multiple of 8 from 64 to 4000, got 60"):
        Request(content, style, max_tile=60)


def test_tile_0_means_never_and_a_bad_tile_is_refused_at_any_size(st, photo, styles):
    assert torch.equal(st(photo, styles[:1], tile=0), st(photo, styles[:1]))  # was a ZeroDivisionError
    with pytest.raises(ValueError, match="multiple of 8"):
        st(photo[..., :16, :16], styles[:1], tile=100)


STUB_MODEL = """
import resource, sys, torch
from adain.model.style_transfer import StyleCode, StyleTransfer

class Network(StyleTransfer):
    device = torch.device("cpu")
    def __init__(self):
        torch.nn.Module.__init__(self)
    def encode_style(self, style):
        return StyleCode(torch.zeros(1, 512, 1, 1), torch.ones(1, 512, 1, 1))
    def _transfer(self, content, *args):  # as the tiled pass: a result at the content's size, nothing else
        return torch.empty(content.shape).copy_(content)

content, style = torch.rand(1, 3, 1500, 2000), torch.rand(1, 3, 64, 64)
Network().stylize(content[..., :64, :64], style, preserve_color=sys.argv[1])  # libraries' first-use memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
Network().stylize(content, style, preserve_color=sys.argv[1], max_tile=1024)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / content[0, 0].numel())
"""


@pytest.mark.parametrize("method, most", [("coral", 20), ("luminance", 40)])
def test_colour_preservation_keeps_the_tiled_memory_bound(method, most):
    run = subprocess.run([sys.executable, "-c", STUB_MODEL, method], capture_output=True, text=True, check=True, cwd=ROOT)
    extra = float(run.stdout)  # bytes per pixel besides the content: the result alone is 12; coral was 48, luminance 60
    assert extra < most
