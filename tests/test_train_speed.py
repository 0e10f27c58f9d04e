"""scripts/train_speed.py: set-ups parsed, each timed on the real training loop (a few CPU steps)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_shards import shard_set, write_images

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("train_speed", ROOT / "scripts" / "train_speed.py")
train_speed = sys.modules["train_speed"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_speed)


def test_setups_are_parsed_and_bad_ones_named():
    setup = train_speed.parse_setup("bf16,nhwc,memory,compile,b16")
    assert (setup.precision, setup.channels_last, setup.in_memory, setup.compile) == ("bf16-mixed", True, True, True)
    assert setup.batch == 16
    assert train_speed.parse_setup("fp32") == train_speed.Setup("fp32")
    with pytest.raises(ValueError, match="unknown 'fast'"):
        train_speed.parse_setup("bf16,fast")
    with pytest.raises(ValueError, match="unknown 'b0'"):
        train_speed.parse_setup("b0")


@pytest.mark.slow
def test_each_setup_is_timed_and_reported(tmp_path: Path, capsys):
    content = shard_set(write_images(tmp_path / "c", 3, (48, 40), seed=1)[0].parent, tmp_path / "s" / "content")
    style = shard_set(write_images(tmp_path / "t", 3, (40, 48), seed=2)[0].parent, tmp_path / "s" / "style")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = train_speed.main([
            "--content-shards", content, "--style-shards", style, "--setups", "fp32", "fp32,nhwc,memory,b3",
            "--warmup", "1", "--steps", "2", "--crop-size", "32", "--workers", "0", "--accelerator", "cpu",
            "--scratch", str(tmp_path / "scratch"), "--out", str(tmp_path / "speed.md"),
            "--best-config", str(tmp_path / "best.yaml"),
        ])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    report = (tmp_path / "speed.md").read_text()
    assert report.startswith("Measured ") and "`scripts/train_speed.py`" in capsys.readouterr().out
    rows = [line.split(" | ") for line in report.splitlines() if line.startswith("| fp32")]
    assert [(r[0], r[1]) for r in rows] == [("| fp32", "8"), ("| fp32,nhwc,memory,b3", "3")]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)  # steps/s and pairs/s
    assert all(0 < float(r[6].rstrip(" |")) < 1e6 for r in rows)  # mean loss of the timed steps

    # the fastest row becomes a config that train.py accepts after the base and GPU configs
    text = (tmp_path / "best.yaml").read_text()
    fastest = re.search(r"in scripts/train_speed\.py: (.+), [0-9.]+ pairs/s", text).group(1)
    top = max(float(r[3]) for r in rows)  # the report rounds: set-ups within its rounding tie
    assert fastest in [r[0].removeprefix("| ") for r in rows if float(r[3]) == top]
    best = yaml.safe_load(text)
    batch = 3 if fastest.endswith("b3") else 8
    assert best["data"]["batch_size"] == batch and best["model"]["compile"] is False
    assert best["model"]["lr"] == pytest.approx(1e-4 * (batch / 8) ** 0.5)  # configs/adain.yaml: 1e-4 at batch 8
    assert best["model"]["lr_decay"] == pytest.approx(5e-5 * batch / 8)
    configs = [a for c in ("adain.yaml", "gpu.yaml") for a in ("--config", str(ROOT / "configs" / c))]
    printed = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "fit", *configs, "--config", str(tmp_path / "best.yaml"), "--print_config"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    merged = yaml.safe_load(printed.stdout)
    assert (merged["data"]["batch_size"], merged["model"]["lr"]) == (batch, best["model"]["lr"])


def test_the_best_config_is_the_fastest_that_trained():
    setups = [train_speed.parse_setup(text) for text in ("fp32", "bf16,b16", "bf16,nhwc")]
    rows = [{"pairs_s": 40.0, "loss": 9.0}, {"pairs_s": 900.0, "loss": float("nan")}, {"pairs_s": 80.0, "loss": 9.1}]
    assert train_speed.best_config(rows[1:2], setups[1:2], {}, 8, "") is None  # nothing trained yet
    best = yaml.safe_load(train_speed.best_config(rows, setups, {"data": {"batch_size": 8}}, 8, ""))
    assert best["trainer"]["precision"] == "bf16-mixed" and best["model"]["channels_last"] is True  # not the NaN one
