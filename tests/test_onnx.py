"""adain-export --onnx: two graphs (style → statistics; content, statistics, α → image) that ONNX
Runtime runs at any image size, giving what StyleTransfer gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nst import export

ort = pytest.importorskip("onnxruntime", reason="the [export] extra (make installs it)")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, decoder_file):
    folder = tmp_path_factory.mktemp("onnx")
    assert export.main(["--onnx", str(folder), "--decoder", str(decoder_file)]) == 0
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("size", [(61, 83), (130, 97)])  # odd, and other than the export's example
def test_onnx_runtime_gives_what_style_transfer_gives(graphs, decoder_file, size):
    from adain.model.style_transfer import StyleTransfer

    torch.manual_seed(0)
    content, style = torch.rand(1, 3, *size), torch.rand(1, 3, 77, 45)
    model = StyleTransfer.load(decoder=str(decoder_file), device="cpu", precision="fp32")
    with torch.no_grad():
        expected = model.stylize(content, style, alpha=0.7).numpy()
    styles = ort.InferenceSession(str(graphs / "style.onnx"))
    stylize = ort.InferenceSession(str(graphs / "stylize.onnx"))
    mean, std = styles.run(None, {"style": style.numpy()})
    (image,) = stylize.run(None, {"content": content.numpy(), "mean": mean, "std": std, "alpha": np.array(0.7, np.float32)})
    assert image.shape == expected.shape
    assert np.abs(image - expected).max() < 1e-4  # float rounding (our CPU path folds the upsamplings)


def test_export_without_its_extra_or_into_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    from adain.core import extras

    monkeypatch.setattr(extras, "find_spec", lambda name: None if name == "onnxscript" else object())
    assert export.main(["--onnx", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'adain-style[export]'" in err
    (tmp_path / "file").write_text("x")
    assert export.main(["--onnx", str(tmp_path / "file")]) == 2 and "not a folder" in capsys.readouterr().err
