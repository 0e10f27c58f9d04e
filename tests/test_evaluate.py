"""scripts/evaluate.py on the CPU with tiny images: every method, the report files agreeing, the
decoder file actually used, and its errors."""

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import grey_decoder, make_image
from PIL import Image

from adain.jobs.image import stylize
from adain.model.decoder_file import save_decoder
from compare import metrics
from compare.benchmark import _load_pairs, pair_request
from compare.evaluation import COLUMNS, EvaluationRow, Method, parse_methods
from compare.report import markdown_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import evaluate  # scripts/evaluate.py, found through the path above

SIZE = 32


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two contents and three styles of other sizes and aspect ratios."""
    root = tmp_path_factory.mktemp("eval")
    for i in range(2):
        make_image(root / "content" / f"c{i}.png", (40 + 8 * i, 36), seed=i)
    for i in range(3):
        make_image(root / "style" / f"s{i}.jpg", (36, 44 + 4 * i), seed=10 + i)
    return root / "content", root / "style"


def run(folders, out, *extra):
    """``scripts/evaluate.py`` in this process at 32 px on the CPU in fp32 (the ``st`` fixture's; ``auto``
    is bf16 on CPUs with bf16 hardware), quiet; its exit status."""
    args = ["--content", str(folders[0]), "--style", str(folders[1]), "--size", str(SIZE), "--device", "cpu",
            "--precision", "fp32", "--quiet"]  # fmt: skip
    return evaluate.main([*args, "--out", str(out), *extra])


def report(out):
    """evaluation.json's methods by spec, and its meta."""
    data = json.loads((out / "evaluation.json").read_text())
    return {row["spec"]: row for row in data["methods"]}, data["meta"]


def test_every_method_and_the_files_agree(folders, tmp_path, capsys):
    out = tmp_path / "out"
    specs = ["identity", "style", "adain", "adain@0.5", "gatys@2", "adain+gatys@1"]
    assert run(folders, out, "--decoder", "random", "--methods", *specs, "--grid-rows", "2") == 0
    rows, meta = report(out)
    assert list(rows) == specs and meta["pairs"] == 3  # the larger count: 3 styles, contents cycled
    assert meta["pair_names"] == ["c0.png + s0.jpg", "c1.png + s1.jpg", "c0.png + s2.jpg"]
    for row in rows.values():
        assert len(row["per_pair"]) == 3
        for name in metrics.METRICS:
            assert row[name] == pytest.approx(sum(q[name] for q in row["per_pair"]) / 3)

    identity, style = rows["identity"], rows["style"]
    assert all(q["content_loss"] == 0 for q in identity["per_pair"]) and identity["adain_style_loss"] > 0
    assert style["adain_style_loss"] < 1e-6 and style["gram_style_loss"] < 1e-6 and style["content_loss"] > 0
    for row in rows.values():  # the bar's ratios, against the two baselines
        assert row["content_vs_style"] == pytest.approx(row["content_loss"] / style["content_loss"])
        assert row["style_vs_identity"] == pytest.approx(row["adain_style_loss"] / identity["adain_style_loss"])
    assert rows["gatys@2"]["content_loss"] > 0  # two steps moved it away from the content it started from
    assert rows["adain+gatys@1"]["method"] == "AdaIN → Gatys (1 L-BFGS step)"

    md = (out / "evaluation.md").read_text()
    names = {f.name for f in fields(EvaluationRow)}
    for row in rows.values():  # each JSON row, as the Markdown table writes it, is in the report
        assert markdown_table(COLUMNS, [EvaluationRow(**{k: row[k] for k in names})])[-1] in md
    assert md in capsys.readouterr().out

    grid = Image.open(out / "grid.jpg")  # 2 rows of content | style | the 6 methods, 4 px between tiles
    assert grid.size == (8 * SIZE + 9 * 4, 2 * SIZE + 3 * 4)


def test_the_decoder_file_is_used(folders, tmp_path, st, encoder):
    path = tmp_path / "grey.safetensors"
    save_decoder(grey_decoder(), path, encoder.identity, {"steps": "7"})
    assert run(folders, tmp_path / "file", "--decoder", str(path), "--methods", "adain", "--pairs", "1") == 0
    assert run(folders, tmp_path / "random", "--decoder", "random", "--methods", "adain", "--pairs", "1") == 0
    (grey, meta), (random, _) = (report(tmp_path / name) for name in ("file", "random"))
    grey, random = grey["adain"], random["adain"]
    assert meta["decoder"] == str(path) and "steps=7" in meta["decoder_note"] and meta["encoder"] == encoder.identity
    assert f"`{path}` (steps=7), encoder `{encoder.identity}`" in (tmp_path / "file" / "evaluation.md").read_text()
    assert grey["content_loss"] != pytest.approx(random["content_loss"], rel=1e-3)

    # the same numbers as the mid-grey model's output for that pair's request, scored directly
    pair = (folders[0] / "c0.png", folders[1] / "s0.jpg")
    (content,), (style,) = _load_pairs([pair], SIZE, torch.device("cpu"))
    expected = metrics.quality(metrics.evaluation_encoder(), stylize(st, pair_request(pair, SIZE)).rgb, content, style)
    for name in metrics.METRICS:
        assert grey[name] == pytest.approx(getattr(expected, name), rel=1e-5)


def test_specs():
    methods = parse_methods(["adain@0.50", "adain@1", "gatys", "adain+gatys@100", "identity", "style"])
    assert [m.spec for m in methods] == ["adain@0.5", "adain", "gatys@500", "adain+gatys@100", "identity", "style"]
    assert methods[0] == Method("adain", alpha=0.5) and methods[3] == Method("adain+gatys", steps=100)
    assert [m.needs_model for m in methods] == [True, True, False, True, False, False]
    assert methods[0].label("fp32") == "AdaIN (fp32), α 0.5" and methods[2].label("fp32") == "Gatys (500 L-BFGS steps)"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "adain@1.5"], "alpha must be in [0, 1]"),
        (["--methods", "adain@nan"], "alpha must be in [0, 1]"),
        (["--methods", "gatys@0"], "steps must be >= 1"),
        (["--methods", "gatys@1.5"], "invalid literal"),
        (["--methods", "adaine"], "unknown method"),
        (["--methods", "identity@1"], "takes no @ value"),
        (["--methods", "adain", "adain@1"], "given twice"),
        (["--methods", "adain", "--grid-methods", "gatys@5"], "not among --methods"),
        (["--size", "8"], "--size must be at least 16"),
        (["--grid-rows", "0"], "must be >= 1"),
    ],
)
def test_bad_flags_exit_2_before_anything_is_read(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--content", str(tmp_path / "none"), "--style", str(tmp_path / "none"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_unreadable_images_are_left_out_and_the_rest_evaluated(folders, tmp_path, capsys):
    content = tmp_path / "content"
    make_image(content / "a_good.png", (40, 36), seed=1)
    (content / "b_text.jpg").write_text("not an image")
    tiny = make_image(content / "c_tiny.png", (6, 6))  # opens, but is refused when loaded: it aborted the run
    out = tmp_path / "out"
    assert run((content, folders[1]), out, "--methods", "identity", "style", "--pairs", "2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert sum("b_text.jpg" in line for line in err) == 1 and "2 unreadable images left out" in err[-1]
    assert f"error: {tiny}: too small (6×6 pixels; the shorter side must be at least 8) (left out)" in err
    rows, meta = report(out)
    assert meta["pair_names"] == ["a_good.png + s0.jpg", "a_good.png + s1.jpg"] and len(rows["style"]["per_pair"]) == 2
    md = (out / "evaluation.md").read_text()
    assert "Left out, unreadable: " in md and "Decoder: none" in md  # no method needed one


def test_no_bundled_decoder_is_one_line(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("adain.model.style_transfer.DEFAULT_DECODER", tmp_path / "none.safetensors")
    assert run(folders, tmp_path / "out", "--methods", "identity", "adain+gatys@1") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no decoder is bundled") and "--decoder" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_empty_folder_is_one_line(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    args = ["--content", str(tmp_path / "empty"), "--style", str(folders[1]), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "folder has no images" in done.stderr and not (tmp_path / "out").exists()
