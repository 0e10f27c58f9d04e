"""infer.py end to end with a small untrained decoder: outputs, naming, flags and every bad input."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

import nst.stylize as infer
from adain.core.checks import normalise_weights

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run each CLI test in its own folder, so a default output dir never lands in the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def images(tmp_path):
    c = tmp_path / "c"
    s = tmp_path / "s"
    return {
        "c1": make_image(c / "cat.jpg", (48, 40), seed=1),
        "c2": make_image(c / "dog.png", (40, 56), seed=2),
        "s1": make_image(s / "wave.jpg", (32, 32), seed=3),
        "s2": make_image(s / "stars.webp", (36, 30), seed=4),
    }


def run(args, decoder_file, *extra):
    """infer.main with a test decoder and small sizes; later flags in ``args``/``extra`` win."""
    return infer.main(["--decoder", str(decoder_file), "--content-size", "32", "--style-size", "32", *map(str, args), *extra])


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_every_content_style_pair(tmp_path, images, decoder_file, capsys):
    out = tmp_path / "out"
    code = run(["--content", images["c1"].parent, "--style", images["s1"], images["s2"], "--output-dir", out], decoder_file)
    assert code == 0
    assert files(out) == [
        "cat_stylized_stars.jpg", "cat_stylized_wave.jpg", "dog_stylized_stars.png", "dog_stylized_wave.png"
    ]  # fmt: skip
    assert Image.open(out / "cat_stylized_wave.jpg").size == (38, 32)  # shorter side 32, aspect kept
    assert Image.open(out / "dog_stylized_wave.png").size == (32, 45)
    assert "stylizing" in capsys.readouterr().err


def test_single_output_file_and_quiet(tmp_path, images, decoder_file, capsys):
    target = tmp_path / "one.webp"
    assert run(["--content", images["c1"], "--style", images["s1"], "--output", target, "--quiet"], decoder_file) == 0
    assert Image.open(target).format == "WEBP"
    assert capsys.readouterr().err == ""


def test_style_weights_blend_into_one_output(tmp_path, images, decoder_file):
    out = tmp_path / "out"
    args = ["--content", images["c1"], "--style", images["s1"], images["s2"], "--style-weights", "2", "1"]
    assert run([*args, "--output-dir", out], decoder_file) == 0
    assert files(out) == ["cat_stylized_wave+stars.jpg"]


def test_mask_with_two_styles(tmp_path, images, decoder_file, capsys):
    mask = tmp_path / "mask.png"
    Image.fromarray(np.tile(np.arange(96, dtype=np.uint8) * 2, (80, 1))).save(mask)  # the content's 48×40 shape
    target = tmp_path / "masked.png"
    args = ["--content", images["c1"], "--style", images["s1"], images["s2"], "--mask", mask, "--output", target]
    assert run(args, decoder_file, "--alpha", "0.7", "--preserve-color") == 0
    assert Image.open(target).size == (38, 32)
    assert run([*args[:-1], tmp_path / "cropped.png"], decoder_file, "--crop") == 0  # the mask is cropped too
    assert Image.open(tmp_path / "cropped.png").size == (32, 32)

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(mask)  # square: it would be stretched
    assert run([*args[:-1], tmp_path / "stretched.png"], decoder_file) == 1
    assert f"error: {mask}: the mask is 32×32 px and the content 38×32 px: their aspect ratios differ" in capsys.readouterr().err
    assert not (tmp_path / "stretched.png").exists()


def test_alpha_channel_and_odd_modes(tmp_path, decoder_file):
    out = tmp_path / "out"
    sources = [make_image(tmp_path / f"in/{m.replace(';', '')}.png", (30, 20), m) for m in ("RGBA", "L", "P", "I;16")]
    style = make_image(tmp_path / "s.jpg", (20, 20), "CMYK")
    assert infer.main(["--content", *map(str, sources), "--style", str(style), "--output-dir", str(out),
                       "--decoder", str(decoder_file), "--content-size", "0"]) == 0  # fmt: skip
    assert Image.open(out / "RGBA_stylized_s.png").mode == "RGBA"
    assert Image.open(out / "L_stylized_s.png").mode == "RGB"
    assert all(Image.open(p).size == (30, 20) for p in out.iterdir())


def test_a_tiny_image_is_refused_not_enlarged_and_a_small_one_keeps_its_size(tmp_path, decoder_file, capsys):
    dot = make_image(tmp_path / "in/dot.png", (1, 1))
    small = make_image(tmp_path / "in/small.png", (8, 9))
    style = make_image(tmp_path / "s.png", (8, 8))
    assert infer.main(["--content", str(dot), str(small), "--style", str(style), "--output-dir", str(tmp_path / "out"),
                       "--decoder", str(decoder_file), "--content-size", "0", "--style-size", "0"]) == 1  # fmt: skip
    assert f"error: {dot}: too small (1×1 pixels; the shorter side must be at least 8)" in capsys.readouterr().err
    assert files(tmp_path / "out") == ["small_stylized_s.png"]
    assert Image.open(tmp_path / "out/small_stylized_s.png").size == (8, 9)


def test_bad_inputs_are_reported_and_the_rest_are_done(tmp_path, images, decoder_file, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.png").write_text("not an image")
    full = images["c1"].read_bytes()
    (bad / "truncated.jpg").write_bytes(full[: len(full) // 3])
    (tmp_path / "noimages").mkdir()
    out = tmp_path / "out"
    contents = [images["c1"], bad / "empty.jpg", bad / "text.png", bad / "truncated.jpg", tmp_path / "missing.jpg", tmp_path / "noimages"]
    code = run(["--content", *contents, "--style", images["s1"], "--output-dir", out], decoder_file)
    err = capsys.readouterr().err
    assert code == 1
    assert files(out) == ["cat_stylized_wave.jpg"]  # the good one is done; nothing partial or temporary
    for name, reason in [("empty.jpg", "empty file"), ("text.png", "not a recognised image"),
                         ("truncated.jpg", "corrupt or truncated"), ("missing.jpg", "no such file"),
                         ("noimages", "folder has no images")]:  # fmt: skip
        line = next(line for line in err.splitlines() if name in line)
        assert line.startswith("error: ") and reason in line
    assert "1 of 5 outputs written; 4 failed, 1 folder empty or unreadable" in err
    assert "Traceback" not in err


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a model is loaded: the checks below must come before any loading."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("adain.model.style_transfer.StyleTransfer.load", refuse)
    monkeypatch.setattr("adain.vgg.encoder.VGG19Encoder.load", refuse)


def test_nothing_to_stylize_is_reported_before_loading_a_model(tmp_path, images, decoder_file, capsys, no_model):
    (tmp_path / "noimages").mkdir()
    for method in ("adain", "gatys"):
        code = infer.main(["--method", method, "--content", str(tmp_path / "noimages"), "--style", str(images["s1"])])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and err == [f"error: {tmp_path / 'noimages'}: folder has no images or videos "
                                     "(.jpg, .jpeg, .png, .webp, .bmp, .tif, .tiff, .mp4, .mov, .m4v, .mkv, .webm, .avi)",
                                     "error: nothing to stylize"]  # fmt: skip


def test_an_output_folder_under_a_file_is_reported_before_loading_a_model(tmp_path, images, decoder_file, capsys, no_model):
    (tmp_path / "taken").write_text("a file where a folder should be")
    code = run(["--content", images["c1"], "--style", images["s1"], "--output-dir", tmp_path / "taken" / "out"], decoder_file)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"error: {tmp_path / 'taken' / 'out'}: cannot write outputs there: {tmp_path / 'taken'} is a file, not a folder"]


def test_bad_style_fails_only_its_outputs(tmp_path, images, decoder_file, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    code = run(["--content", images["c1"], images["c2"], "--style", images["s1"], broken, "--output-dir", out], decoder_file)
    assert code == 1
    assert files(out) == ["cat_stylized_wave.jpg", "dog_stylized_wave.png"]
    assert capsys.readouterr().err.count("broken.jpg") == 1


@pytest.mark.parametrize(
    "size, max_tile, limit",
    [("9000", "1024", "64,000,000"), ("6000", "0", "16,000,000")],  # 97 MP and 43 MP (tiled: allowed)
)
def test_too_large_after_resize_is_one_line_naming_the_file_and_the_limit(tmp_path, images, decoder_file, capsys, size, max_tile, limit):
    code = infer.main(["--content", str(images["c1"]), "--style", str(images["s1"]), "--output-dir", str(tmp_path / "o"),
                       "--decoder", str(decoder_file), "--content-size", size, "--max-tile", max_tile])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and files(tmp_path / "o") == [] and err[-1] == "0 of 1 outputs written; 1 failed"
    assert len(err) == 2 and "cat.jpg: too large to stylize" in err[0] and f"limit {limit}" in err[0]


def test_never_overwrites_an_input(tmp_path, images, decoder_file, capsys):
    before = images["c2"].read_bytes()
    assert run(["--content", images["c2"], "--style", images["s1"], "--output", images["c2"]], decoder_file) == 1
    assert images["c2"].read_bytes() == before
    assert "refusing to overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--alpha", "1.5"], "alpha must be in [0, 1], got 1.5"),
        (["--alpha", "-0.1"], "alpha must be in [0, 1], got -0.1"),
        (["--style-weights", "1", "2", "3"], "3 style weights for 2 styles"),
        (["--style-weights", "0", "0"], "not all zero"),
        (["--style-weights", "nan", "1"], "'nan' is not a finite number"),
        (["--style-weights", "inf", "1"], "'inf' is not a finite number"),
        (["--alpha", "nan"], "'nan' is not a finite number"),
        (["--mask", "m.png", "--style-weights", "1", "1"], "a mask needs exactly two styles and no style weights"),
        (["--output", "x.png"], "--output names one file but there are 2 outputs"),
        (["--content-size", "-3"], "must be >= 0"),
        (["--style-size", "7"], "style_size must be 0 or at least 8 px, got 7"),
    ],
)
def test_impossible_flags_exit_2_with_usage(images, decoder_file, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        run(["--content", images["c1"], "--style", images["s1"], images["s2"], *extra], decoder_file)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "usage:" in err and message in err


def test_mask_needs_two_styles(images, decoder_file, capsys):
    with pytest.raises(SystemExit) as info:
        run(["--content", images["c1"], "--style", images["s1"], "--mask", images["s2"]], decoder_file)
    assert info.value.code == 2 and "a mask needs exactly two styles and no style weights, got 1 styles" in capsys.readouterr().err


@pytest.mark.parametrize("decoder", ["missing.safetensors", "garbage.safetensors"])
def test_bad_decoder_is_one_line(tmp_path, images, capsys, decoder):
    path = tmp_path / decoder
    if decoder.startswith("garbage"):
        path.write_bytes(b"garbage")
    code = infer.main(["--content", str(images["c1"]), "--style", str(images["s1"]), "--decoder", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and err.startswith("error: ") and decoder in err


@pytest.mark.slow
def test_real_process_has_no_traceback(tmp_path, images, decoder_file):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "infer.py"), "--content", str(images["c1"]), str(broken), "--style", str(images["s1"]),
         "--output-dir", str(out), "--decoder", str(decoder_file), "--content-size", "32"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "broken.png" in proc.stderr
    assert files(out) == ["cat_stylized_wave.jpg"]


def test_precision_on_cpu(tmp_path, images, decoder_file, capsys):
    common = ["--content", images["c1"], "--style", images["s1"], "--device", "cpu"]
    assert run([*common, "--precision", "bf16", "--output", tmp_path / "b.png"], decoder_file) == 0
    assert Image.open(tmp_path / "b.png").size == (38, 32)
    assert run([*common, "--precision", "fp16", "--output", tmp_path / "h.png"], decoder_file) == 1
    assert "use --precision bf16 or fp32" in capsys.readouterr().err


# Runs a command line in a fresh interpreter, then says on stderr whether torch was imported.
PROBE = """
import runpy, sys
target, *sys.argv[1:] = sys.argv[1:]
sys.argv[0] = target
try:
    runpy.run_module(target, run_name="__main__", alter_sys=True) if target == "adain.app" else runpy.run_path(target, run_name="__main__")
except SystemExit as done:
    code = done.code
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "target, usage_error",
    [(str(ROOT / "infer.py"), ["--content", "a.jpg", "--style", "b.jpg", "--alpha", "2"]), ("adain.app", ["--port", "0"])],
    ids=["infer.py", "adain.app"],
)
def test_help_version_and_usage_errors_answer_without_importing_torch(target, usage_error):
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]  # tomllib: Python 3.11+
    for args, code, expected in ((["--help"], 0, "usage:"), (["--version"], 0, f" {version}\n"), (usage_error, 2, "error:")):
        proc = subprocess.run([sys.executable, "-c", PROBE, target, *args], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == code, proc.stderr
        assert expected in proc.stdout + proc.stderr
        assert proc.stderr.endswith("torch imported: False\n"), proc.stderr


def test_max_tile_gives_the_same_image_and_is_checked(tmp_path, images, decoder_file, capsys):
    common = ["--content", images["c1"], "--style", images["s1"], "--content-size", "80"]
    assert run([*common, "--output", tmp_path / "whole.png", "--max-tile", "0"], decoder_file, "--content-size", "80") == 0
    assert run([*common, "--output", tmp_path / "tiled.png", "--max-tile", "64"], decoder_file, "--content-size", "80") == 0
    whole, tiled = (np.asarray(Image.open(tmp_path / f"{n}.png"), dtype=int) for n in ("whole", "tiled"))
    assert whole.shape == (80, 96, 3) and np.abs(whole - tiled).max() <= 1  # 8-bit rounding at most
    for flags, message in ((["--max-tile", "60"], "max_tile must be 0 (never tile)"),
                           (["--max-tile", "4008"], "from 64 to 4000, got 4008"),
                           (["--method", "gatys", "--max-tile", "64"], "--max-tile applies only to --method adain")):  # fmt: skip
        with pytest.raises(SystemExit):
            run([*common, *flags], decoder_file)
        assert message in capsys.readouterr().err


def test_look_size_stylizes_small_and_upsamples_guided_by_the_content(tmp_path, images, decoder_file, capsys, monkeypatch):
    import adain.model.style_transfer

    seen = []
    upsample = adain.model.style_transfer.guided_upsample
    monkeypatch.setattr(adain.model.style_transfer, "guided_upsample", lambda low, *rest: seen.append(low.shape[-2:]) or upsample(low, *rest))
    common = ["--content", images["c2"], "--style", images["s1"], "--content-size", "96"]  # 96×134
    assert run([*common, "--output", tmp_path / "look.png", "--look-size", "48"], decoder_file, "--content-size", "96") == 0
    assert seen == [(67, 48)] and Image.open(tmp_path / "look.png").size == (96, 134)
    for flags, message in ((["--look-size", "-1"], "look_size must be >= 0, got -1"),
                           (["--look-size", "4"], "look_size must be 0 or at least 8 px, got 4"),
                           (["--method", "gatys", "--look-size", "64"], "--look-size applies only to --method adain")):  # fmt: skip
        with pytest.raises(SystemExit):
            run([*common, *flags], decoder_file)
        assert message in capsys.readouterr().err


def test_symlink_loops_fail_only_their_outputs(tmp_path, images, decoder_file, capsys):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    out = tmp_path / "out"
    for role, extra in (("style", []), ("content", []), ("mask", ["--mask", loop])):
        contents = [images["c1"], images["c2"], *([loop] if role == "content" else [])]
        styles = [images["s1"], *([loop] if role != "content" else [])]
        code = run(["--content", *contents, "--style", *styles, "--output-dir", out / role, *extra], decoder_file)
        err = capsys.readouterr().err
        assert code == 1 and f"error: {loop}: cannot read (Too many levels of symbolic links)" in err.splitlines()
    assert files(out / "style") == ["cat_stylized_wave.jpg", "dog_stylized_wave.png"]
    assert files(out / "content") == ["cat_stylized_wave.jpg", "dog_stylized_wave.png"]
    assert files(out / "mask") == []  # the mask is every output's


def test_an_unreadable_folder_fails_only_its_images(tmp_path, images, decoder_file, capsys, monkeypatch):
    hidden = tmp_path / "nox"
    make_image(hidden / "a.jpg")
    stat, listdir = os.stat, os.listdir

    def inside(path) -> bool:
        return str(path).startswith(str(hidden) + os.sep)

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    # what chmod 000 does for anyone but root: the folder can be neither listed nor looked into
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: denied(path) if inside(path) else stat(path, *a, **k))
    monkeypatch.setattr(os, "listdir", lambda path=".": denied(path) if Path(path) == hidden else listdir(path))
    out = tmp_path / "out"
    assert run(["--content", images["c1"], hidden / "a.jpg", hidden, "--style", images["s1"], "--output-dir", out], decoder_file) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"error: {hidden / 'a.jpg'}: permission denied" in err and f"error: {hidden}: cannot list the folder (Permission denied)" in err
    assert err[-1] == "1 of 2 outputs written; 1 failed, 1 folder empty or unreadable"
    assert files(out) == ["cat_stylized_wave.jpg"]


def test_bad_entries_of_a_folder_are_named_not_skipped(tmp_path, images, decoder_file, capsys):
    folder = images["c1"].parent
    (folder / "sub.jpg").mkdir()
    (folder / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    out = tmp_path / "out"
    assert run(["--content", folder, "--style", images["s1"], "--output-dir", out], decoder_file) == 1
    err = capsys.readouterr().err.splitlines()
    for name, reason in (("sub.jpg", "is a directory, not an image"), ("dangling.png", "no such file"),
                         ("loop.png", "cannot read (Too many levels of symbolic links)")):  # fmt: skip
        assert f"error: {folder / name}: {reason}" in err
    assert files(out) == ["cat_stylized_wave.jpg", "dog_stylized_wave.png"] and err[-1] == "2 of 5 outputs written; 3 failed"


def test_gatys_snapshots_never_overwrite_an_input(tmp_path, images, decoder_file, capsys):
    content = tmp_path / "snap" / "a_step1.png"
    content.parent.mkdir()
    content.write_bytes(images["c2"].read_bytes())
    args = ["--method", "gatys", "--steps", "1", "--save-every", "1", "--content", content, "--style", images["s1"],
            "--output", tmp_path / "snap" / "a.png", "--content-size", "16", "--style-size", "16", "--quiet"]  # fmt: skip
    assert infer.main(list(map(str, args))) == 1
    assert content.read_bytes() == images["c2"].read_bytes() and files(content.parent) == ["a_step1.png"]
    assert capsys.readouterr().err.splitlines()[0] == f"error: {content}: refusing to overwrite an input file"


def test_an_output_too_large_for_its_format_is_refused_before_stylizing(tmp_path, images, decoder_file, capsys, monkeypatch):
    wide = make_image(tmp_path / "c" / "wide.webp", (4000, 8))
    tall = make_image(tmp_path / "tall.png", (8, 4000))
    rendered = []
    render = infer.AdaINRenderer.__call__
    monkeypatch.setattr(infer.AdaINRenderer, "__call__", lambda self, r, job: rendered.append(job.content) or render(self, r, job))
    out = tmp_path / "out"
    assert run(["--content", wide, images["c1"], "--style", images["s1"], "--output-dir", out], decoder_file, "--content-size", "64") == 1
    err = capsys.readouterr().err.splitlines()
    holds = "pixels is more than a .webp file holds (16,383 a side at most); use .png"
    assert f"error: {out / 'wide_stylized_wave.webp'}: 32000×64 {holds}" in err
    assert files(out) == ["cat_stylized_wave.jpg"] and rendered == [images["c1"]]
    assert run(["--content", tall, "--style", images["s1"], "--output", tmp_path / "tall.jpg"], decoder_file, "--content-size", "160") == 1
    holds = "pixels is more than a .jpg file holds (65,500 a side at most); use .png"
    assert capsys.readouterr().err.splitlines()[0] == f"error: {tmp_path / 'tall.jpg'}: 160×80000 {holds}"
    assert not (tmp_path / "tall.jpg").exists() and rendered == [images["c1"]]


def test_an_output_path_that_is_a_folder_is_refused_before_loading_a_model(tmp_path, images, decoder_file, capsys, no_model):
    for name, content in (("taken.png", images["c1"]), ("taken.mp4", tmp_path / "clip.mp4")):
        (tmp_path / name).mkdir()
        assert run(["--content", content, "--style", images["s1"], "--output", tmp_path / name], decoder_file) == 1
        kind = "a video" if name.endswith(".mp4") else "an image"
        assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path / name}: is a folder; cannot write {kind} there"]


def test_huge_style_weights_are_normalised_without_overflow():
    assert normalise_weights([1e308, 1e308], 2) == [0.5, 0.5]  # the sum overflowed to inf: weights [0, 0]
    assert normalise_weights([3e307, 1e308, 0], 3) == pytest.approx([3 / 13, 10 / 13, 0])
    with pytest.raises(ValueError, match="finite, non-negative and not all zero"):
        normalise_weights([float("inf"), 1], 2)
