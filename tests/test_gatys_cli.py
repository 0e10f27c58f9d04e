"""`infer.py --method gatys` end to end: outputs, snapshots, the AdaIN start, defaults, bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

import nst.stylize as infer
from gatys import DEFAULTS, load_config, optimize

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--content-size", "32", "--style-size", "32", "--quiet", "--device", "cpu"]


def gatys(*args: str) -> int:
    return infer.main(["--method", "gatys", *FAST, *args])


def test_writes_the_output_and_snapshots(tmp_path):
    content, style = make_image(tmp_path / "c.png", (40, 32)), make_image(tmp_path / "s.jpg", seed=1)
    out = tmp_path / "out" / "result.png"
    code = gatys("--content", str(content), "--style", str(style), "--output", str(out), "--steps", "2", "--save-every", "1")
    assert code == 0
    assert Image.open(out).size == (40, 32)
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.png", "result_step1.png", "result_step2.png"]
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(out.parent / "result_step2.png")))


def test_init_adain_with_no_steps_is_the_fast_output(tmp_path, decoder_file):
    content, style = make_image(tmp_path / "c.png", (40, 32)), make_image(tmp_path / "s.png", seed=1)
    common = ["--content", str(content), "--style", str(style), "--decoder", str(decoder_file), *FAST]
    assert infer.main([*common, "--output", str(tmp_path / "fast.png")]) == 0
    hybrid = ["--method", "gatys", "--init", "adain", "--steps", "0"]
    assert infer.main([*hybrid, *common, "--output", str(tmp_path / "g.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "fast.png")), np.asarray(Image.open(tmp_path / "g.png")))


@pytest.mark.slow
def test_bad_input_is_one_line_exit_1_and_no_file(tmp_path):
    good, style = make_image(tmp_path / "good.png", (40, 32)), make_image(tmp_path / "s.png", seed=1)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "infer.py"), "--method", "gatys", *FAST, "--steps", "0", "--content",
         str(tmp_path / "broken.jpg"), str(good), "--style", str(style), "--output-dir", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1
    assert errors[0].startswith("error: ") and "broken.jpg" in errors[0] and "Traceback" not in proc.stderr
    assert errors[1] == "1 of 2 outputs written; 1 failed"
    assert sorted(p.name for p in out.iterdir()) == ["good_stylized_s.png"]  # no partial or temporary file


def test_missing_decoder_for_adain_init_is_one_line(tmp_path, capsys):
    content, style = make_image(tmp_path / "c.png"), make_image(tmp_path / "s.png", seed=1)
    missing = ["--init", "adain", "--decoder", str(tmp_path / "none.safetensors")]
    code = gatys(*missing, "--content", str(content), "--style", str(style), "--output", str(tmp_path / "o.png"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "none.safetensors" in err[0] and not (tmp_path / "o.png").exists()


def test_unset_flags_take_the_config_defaults():
    parser = infer.build_parser()
    args = parser.parse_args(["--method", "gatys", "--content", "c.png", "--style", "s.png"])
    infer.check_args(args, parser)
    assert args.gatys == DEFAULTS and args.save_every == 0
    args = parser.parse_args(["--method", "gatys", "--optimizer", "adam", "--lr", "0.5", "--content", "c.png", "--style", "s.png"])
    infer.check_args(args, parser)
    assert (args.gatys.optimizer, args.gatys.lr("adam"), args.gatys.lr("lbfgs")) == ("adam", 0.5, DEFAULTS.lr("lbfgs"))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "5"], "--steps applies only to --method gatys"),
        (["--method", "gatys", "--alpha", "0.5"], "--alpha applies only to --method adain"),
        (["--method", "gatys", "--precision", "fp16"], "--precision fp16 applies only to --method adain"),
        (["--method", "gatys", "--compile", "default"], "--compile applies only to --method adain"),
        (["--method", "gatys", "--decoder", "d.safetensors"], "--decoder is used by --method gatys only with --init adain"),
        (["--method", "gatys", "--steps", "-1"], "must be >= 0"),
        (["--method", "gatys", "--lr", "0"], "lr must be finite and > 0, got 0.0"),
        (["--method", "gatys", "--tv-weight", "-1"], "content, style and TV weights must be finite and >= 0"),
        (["--method", "gatys", "--lr", "nan"], "'nan' is not a finite number"),
        (["--method", "gatys", "--style-weight", "inf"], "'inf' is not a finite number"),
        (["--method", "gatys", "--optimizer", "sgd"], "invalid choice"),
    ],
)
def test_impossible_flags_exit_2(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        infer.main(["--content", "c.png", "--style", "s.png", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_config_file_sets_the_defaults_layers_included_and_flags_override_it(tmp_path, monkeypatch):
    config = tmp_path / "mine.yaml"
    config.write_text("steps: 3\nstyle_weight: 123.0\ncontent_layer: relu3_1\nstyle_layers: [relu1_1, relu2_1]\n")
    parser = infer.build_parser()
    args = parser.parse_args(["--method", "gatys", "--config", str(config), "--steps", "1", "--content", "c.png", "--style", "s.png"])
    infer.check_args(args, parser)
    assert (args.gatys.steps, args.gatys.style_weight, args.gatys.optimizer) == (1, 123.0, DEFAULTS.optimizer)  # the flag wins
    assert (args.gatys.content_layer, args.gatys.style_layers) == ("relu3_1", ("relu1_1", "relu2_1"))

    seen = []

    def recording(content, styles, config, **rest):
        seen.append(config)
        return optimize.stylize(content, styles, config, **rest)

    monkeypatch.setattr("gatys.stylize", recording)
    content, style = make_image(tmp_path / "c.png", (40, 32)), make_image(tmp_path / "s.png", seed=1)
    assert gatys("--config", str(config), "--content", str(content), "--style", str(style), "--output", str(tmp_path / "o.png")) == 0
    assert seen == [load_config(config)]  # the file's settings, layers included, reach gatys.stylize
    assert (tmp_path / "o.png").is_file()


@pytest.mark.parametrize(
    "text, message",
    [
        ("stepz: 3\n", "unknown Gatys settings ['stepz']"),
        (None, "No such file"),
        ("steps: [\n", "--config"),
        ("style_layers: relu1_1\n", "style_layers must be a list of VGG19 layers, got 'relu1_1'"),
        ("style_layers: [relu1_1, relu9_1]\n", "unknown or no VGG19 layers ['relu9_1']"),
        ("layer_weights: [1.0, 2.0]\n", "one finite, non-negative weight per style layer (5), got (1.0, 2.0)"),
        ("optimizer: adam\nlearning_rates: {adma: 0.1}\n", "learning_rates must map optimizers"),
    ],
    ids=["unknown-key", "missing", "not-yaml", "bare-layer", "unknown-layer", "weights-per-layer", "unknown-optimizer"],
)
def test_a_bad_config_file_exits_2_with_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "bad.yaml"
    if text is not None:
        config.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        infer.main(["--method", "gatys", "--config", str(config), "--content", "c.png", "--style", "s.png"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err


def test_a_config_file_with_one_step_size_and_1e6_runs(tmp_path):
    """Only Adam's step size given, the default L-BFGS runs with its own; ``1e6`` is a number."""
    config = tmp_path / "mine.yaml"
    config.write_text("learning_rates: {adam: 0.1}\nstyle_weight: 1e6\nstyle_layers: [relu1_1]\ncontent_layer: relu1_1\n")
    content, style = make_image(tmp_path / "c.png", (40, 32)), make_image(tmp_path / "s.png", seed=1)
    out = tmp_path / "o.png"
    assert gatys("--config", str(config), "--steps", "1", "--content", str(content), "--style", str(style), "--output", str(out)) == 0
    assert out.is_file()


def test_config_applies_only_to_gatys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        infer.main(["--config", "configs/gatys.yaml", "--content", "c.png", "--style", "s.png"])
    assert exit_info.value.code == 2 and "--config applies only to --method gatys" in capsys.readouterr().err
