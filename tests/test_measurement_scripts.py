"""The measurement scripts refuse impossible settings at once (exit 2, one line) and report a
failure on one line (exit 1), never with a traceback or after the whole measurement has run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_main, script

ROOT = Path(__file__).resolve().parent.parent


class Measured(Exception):
    """Raised where a script would start measuring: the check came too late."""


def measuring(*_: object, **__: object) -> None:
    raise Measured


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize(
    "argv", [["--steps", "0"], ["--steps", "-1"], ["--sizes", "0"], ["--sizes", "256", "-5"]]
)  # fmt: skip
def test_time_gatys_refuses_impossible_sizes_and_steps(argv, monkeypatch, capsys):
    """--steps 0 was a ZeroDivisionError; --sizes 0 measured the whole photo and labelled it 0×0."""
    time_gatys = script("time_gatys")
    monkeypatch.setattr(time_gatys, "package_seconds_per_step", measuring)
    code, err = run_main(time_gatys, monkeypatch, capsys, *argv)
    assert code == 2 and "must be >= 1" in one_error_line(err.splitlines()[-1])


@pytest.mark.parametrize(
    ("argv", "said"),
    [(["--content", "missing.jpg"], "missing.jpg: no such file"), (["--device", "gpu"], "unknown device 'gpu'")],
)
def test_time_gatys_reports_bad_inputs_on_one_line(argv, said, monkeypatch, capsys):
    code, err = run_main(script("time_gatys"), monkeypatch, capsys, *argv, "--sizes", "32", "--steps", "1")
    assert code == 1 and one_error_line(err).startswith("error: ") and said in err


def test_train_speed_reports_bad_settings_and_data_on_one_line(tmp_path, capsys):
    """Errors of the data module (a crop it cannot take, missing shards) were tracebacks."""
    train_speed = script("train_speed")
    common = ["--setups", "fp32", "--warmup", "1", "--steps", "1", "--workers", "0", "--accelerator", "cpu",
              "--scratch", str(tmp_path / "scratch")]  # fmt: skip
    missing = str(tmp_path / "missing-{000000..000001}.tar")
    assert train_speed.main(["--content-shards", missing, "--style-shards", missing, *common]) == 1
    assert "no such shard" in one_error_line(capsys.readouterr().err)
    assert train_speed.main(["--content-shards", missing, "--style-shards", missing, "--crop-size", "12", *common]) == 2
    assert "crop_size must be a multiple of 8" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("name", ["train_speed", "memory_benchmark", "resolution_benchmark", "video_benchmark"])
def test_a_report_path_that_cannot_be_written_is_refused_before_measuring(name, tmp_path, monkeypatch, capsys):
    """An --out naming a folder was found only when the report was written, after the whole run,
    as a traceback (IsADirectoryError); under a file, as NotADirectoryError."""
    module = script(name)
    for target in ("measure", "untrained_decoder"):
        if hasattr(module, target):
            monkeypatch.setattr(module, target, measuring)
    (tmp_path / "file.md").write_text("")
    shards = ["--content-shards", "c.tar", "--style-shards", "s.tar"] if name == "train_speed" else []
    for out in (tmp_path, tmp_path / "file.md" / "report.md"):
        code, err = run_main(module, monkeypatch, capsys, *shards, "--out", str(out))
        assert code == 2 and f"{out}" in one_error_line(err.splitlines()[-1])


@pytest.mark.parametrize(
    "argv", [["--frames", "1"], ["--long", "0"], ["--long-rate", "0"], ["--long-rate", "nan"], ["--real-size", "-1"]]
)  # fmt: skip
def test_video_benchmark_refuses_impossible_numbers(argv, monkeypatch, capsys):
    """--long-rate 0 was a ZeroDivisionError and --frames 1 a flicker of NaN, each after minutes;
    --long 0 and --frames 0 a multi-line RuntimeError from infer.py's run."""
    video = script("video_benchmark")
    monkeypatch.setattr(video, "untrained_decoder", measuring)
    monkeypatch.setattr(video, "make_clip", measuring)
    code, err = run_main(video, monkeypatch, capsys, *argv)
    assert code == 2 and one_error_line(err.splitlines()[-1])


@pytest.mark.slow
def test_a_failed_measured_run_is_one_line():
    """It carried the child's last 2000 characters of stderr and the probe's numbers."""
    memory = script("memory_benchmark")
    with pytest.raises(RuntimeError) as failed:
        memory.measured_run(["infer.py", "--content", "missing.jpg", "--style", "missing.jpg", "--decoder", "random"])
    line = one_error_line(str(failed.value))
    assert line.startswith("infer.py failed (exit 1): ") and line.endswith("random: no such decoder file")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolution_benchmark_on_missing_cuda_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/resolution_benchmark.py", "--sizes", "1", "--cases", "--look-size 512", "--device", "cuda",
         "--out", str(tmp_path / "report.md")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and "CUDA was requested but is not available" in one_error_line(proc.stderr)
    assert not (tmp_path / "report.md").exists()


def test_reports_name_the_processor_and_the_torch_version(tmp_path, capsys):
    """The machine was ``platform.processor() or platform.machine()``: on Linux "x86_64", not the CPU."""
    from adain.core.device import cpu_model

    script("memory_benchmark").report("memory_benchmark.py", "| a |\n", tmp_path / "report.md", ", cpu")
    header = (tmp_path / "report.md").read_text().splitlines()[0]
    assert f" on {cpu_model()}, " in header and f", torch {torch.__version__}, cpu, " in header
    assert header == capsys.readouterr().out.splitlines()[0]


def test_video_benchmark_flicker_only_runs_just_the_flicker_clips(tmp_path, monkeypatch, capsys):
    """--flicker-only: the pan and still clips at 480p and the real clip, no 720p or memory run,
    and a report without the memory table."""
    video = script("video_benchmark")
    made, runs = [], []
    monkeypatch.setattr(video, "make_clip", lambda path, size, *_: made.append((path.name, size)) or path)
    monkeypatch.setattr(video, "stylize", lambda clip, *flags, **kw: runs.append(clip.name) or (1000.0, 0.5))
    monkeypatch.setattr(video, "flicker", lambda output, source: 0.25)
    monkeypatch.setattr(video, "frames_of", lambda path: [0] * 7)
    decoder = tmp_path / "decoder.safetensors"
    code, _ = run_main(video, monkeypatch, capsys, "--flicker-only", "--decoder", str(decoder), "--out", str(tmp_path / "r.md"))
    assert code == 0
    assert made == [("pan_480p.mp4", (854, 480)), ("still.mp4", (854, 480))]
    assert runs == ["pan_480p.mp4"] * 2 + ["still.mp4"] * 2 + [video.REAL_CLIP.name] * 2
    report = (tmp_path / "r.md").read_text()
    assert "| pan (480p" in report and "| still (480p" in report and "| real: `big_buck_bunny.mp4` (360p, 7 frames" in report
    assert "| 480p (854×480) | 0.8 |" in report and "720p" not in report
    assert "| clip (`--smoothing 0.8`) | peak RSS |" not in report  # no memory table
    assert f"decoder `{decoder}`" in report
    code, err = run_main(video, monkeypatch, capsys, "--flicker-only", "--memory-only")
    assert code == 2 and "not allowed with" in err


def test_training_log_averages_windows_across_resumed_runs(tmp_path, capsys):
    """Lightning's metrics.csv (the epoch column, empty cells, a resumed run in a second file that
    logs a step again) thinned to one row per window: means of the losses, the last learning rate."""
    header = "epoch,step,train/content,train/loss,train/lr,train/pairs_per_sec,train/style,val/other\n"
    (tmp_path / "a.csv").write_text(header + "0,9,4,40,0.5,,3,\n0,19,2,20,0.4,8,1,7\n0,29,9,90,0.3,9,9,\n")
    (tmp_path / "b.csv").write_text(header + "0,29,3,30,0.3,10,2,\n0,39,5,50,0.2,12,4,\n1,,,,,,,\n")
    log = script("training_log")
    out = tmp_path / "log.csv"
    assert log.main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--every", "20", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "step,content,style,style_relu1_1,style_relu2_1,style_relu3_1,style_relu4_1,recon_pixel,recon_features,"
        "loss,pairs_per_sec,lr,style_weight"
    )
    assert lines[1:] == ["19,3,2,,,,,,,30,8,0.4,", "39,4,3,,,,,,,40,11,0.2,"]  # steps 0–19 and 20–39; step 29 from b.csv
    assert "2 rows, steps up to 39" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text(header)
    assert log.main([str(tmp_path / "empty.csv"), "--out", str(out)]) == 1
    assert one_error_line(capsys.readouterr().err).startswith("error: no train/ metrics in")
    assert log.main([str(tmp_path / "missing.csv"), "--out", str(out)]) == 1
    assert "missing.csv" in one_error_line(capsys.readouterr().err)
    assert out.read_text().splitlines()[1:] == lines[1:]  # a failed run leaves the last log as it was


def test_training_log_appends_a_stage_counting_its_steps_on(tmp_path, capsys, monkeypatch):
    """With --decoder, rows name the decoder's last stage, its device and precision, and count steps
    on from the stages before; --append keeps the log's rows and refuses a log of other columns."""
    from adain.model.decoder import Decoder
    from adain.model.decoder_file import save_decoder

    stages = [{"stage": "reconstruction", "steps": 100, "pairs_seen": 800},
              {"stage": "AdaIN λ 2→10", "steps": 40, "pairs_seen": 320, "device": "AMD EPYC", "precision": "32-true"}]  # fmt: skip
    save_decoder(Decoder(), tmp_path / "d.safetensors", "enc", {"stages": stages})
    (tmp_path / "m.csv").write_text("epoch,step,train/content,train/lr,train/style_weight\n0,19,4,0.5,2\n0,39,2,0.4,6\n")
    log = script("training_log")
    out = tmp_path / "log.csv"
    args = [str(tmp_path / "m.csv"), "--every", "20", "--decoder", str(tmp_path / "d.safetensors"), "--append", str(out)]
    assert log.main(args) == 0 and log.main(args) == 0  # twice: the second adds to the first
    rows = out.read_text().splitlines()
    assert rows[0].startswith("stage,step,") and rows[0].endswith(",lr,style_weight,device,precision")
    assert rows[1:] == ["AdaIN λ 2→10,119,4,,,,,,,,,,0.5,2,AMD EPYC,32-true", "AdaIN λ 2→10,139,2,,,,,,,,,,0.4,6,AMD EPYC,32-true"] * 2
    code, err = run_main(log, monkeypatch, capsys, str(tmp_path / "m.csv"), "--append", str(out))
    assert code == 2 and "--append needs --decoder" in err  # which stage? a usage error
    (tmp_path / "other.csv").write_text("step,loss\n1,2\n")
    args[-1] = str(tmp_path / "other.csv")
    capsys.readouterr()
    assert log.main(args) == 1 and "its columns are not" in one_error_line(capsys.readouterr().err)


def test_readme_figure_lays_out_the_requests_results(tmp_path, encoder):
    """The front-page figure: styles across, photos down, each result the shared path's for that
    pair; then rows whose panels change along them (weights, α) and the colour and mask row."""
    from conftest import grey_decoder
    from PIL import Image

    from adain.jobs.image import load, stylize
    from adain.jobs.request import ImageSource, Request
    from adain.media.image_io import tensor_to_pil
    from adain.model.decoder_file import save_decoder
    from adain.model.style_transfer import StyleTransfer

    figure = script("readme_figure")
    decoder = tmp_path / "grey.safetensors"
    save_decoder(grey_decoder(), decoder, encoder.identity)
    out = tmp_path / "results.png"
    assert figure.main(["--size", "32", "--cell", "24", "--decoder", str(decoder), "--device", "cpu", "--out", str(out)]) == 0
    sheet = Image.open(out).convert("RGB")
    gap, caption, step = figure.GAP, figure.CAPTION, 24 + figure.GAP
    assert sheet.size == (gap + 5 * step, gap + 5 * step + 3 * (step + caption))

    def panel(row, column):
        top = gap + row * step + max(0, row - 5) * caption
        return np.asarray(sheet.crop((gap + column * step, top, gap + column * step + 24, top + 24)), dtype=float)

    def shown(rgb):
        return np.asarray(tensor_to_pil(rgb[0]).resize((24, 24), Image.Resampling.LANCZOS), dtype=float)

    photo, painting = figure.CONTENT / "chelsea.jpg", figure.STYLE / "van_gogh_starry_night.jpg"
    request = Request(ImageSource.file(photo), (ImageSource.file(painting),), content_size=32, style_size=32, crop=True)
    result = stylize(StyleTransfer.load(decoder=str(decoder), device="cpu"), request).rgb
    assert np.array_equal(panel(1, 0), shown(load(ImageSource.file(photo), 32, crop=True).rgb))
    assert np.array_equal(panel(1, 1), shown(result))
    assert np.array_equal(panel(0, 1), shown(load(ImageSource.file(painting), 32, crop=True).rgb))
    assert np.array_equal(panel(0, 0), np.full((24, 24, 3), 255.0))  # the corner stays empty
    for row in (5, 6):  # style weights 1:0 → 0:1, α 0 → 1: the ends differ (a grey decoder: slightly)
        assert not np.array_equal(panel(row, 0), panel(row, 4))
