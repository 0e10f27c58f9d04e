"""scripts/train_from_folders.py: split, shards, training, export and evaluation in one command."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_shards import make_shards, write_images

from adain.training.validation_split import VALIDATION_FRACTION, held_out, validation_names

pytestmark = pytest.mark.slow  # each test runs the whole recipe or train.py

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
_spec = importlib.util.spec_from_file_location("train_from_folders", ROOT / "scripts" / "train_from_folders.py")
train_from_folders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_from_folders)  # its `from make_shards import …` finds test_shards' module


def recipe(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "train_from_folders.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300, cwd=cwd, check=False)


def test_one_command_splits_shards_trains_exports_and_evaluates(tmp_path: Path):
    write_images(tmp_path / "photos", 24, (64, 48), seed=5, prefix="img")
    write_images(tmp_path / "paintings", 12, (48, 64), seed=6, prefix="art")
    out = tmp_path / "run"
    args = ["--content", str(tmp_path / "photos"), "--style", str(tmp_path / "paintings"), "--out", str(out),
            "--config", "configs/smoke.yaml", "--eval-size", "32", "--eval-methods", "identity", "style", "adain"]  # fmt: skip
    proc = recipe(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]

    held = {kind: validation_names((p.name for p in (tmp_path / folder).iterdir()), VALIDATION_FRACTION[kind])
            for kind, folder in (("content", "photos"), ("style", "paintings"))}  # fmt: skip
    assert held == {"content": ["img021.jpg"], "style": ["art006.jpg", "art011.jpg"]}
    assert (out / "validation.txt").read_text().split() == ["content/img021.jpg", "style/art006.jpg", "style/art011.jpg"]
    assert sorted(p.name for p in (out / "validation" / "style").iterdir() if p.is_symlink()) == held["style"]

    for kind, names in held.items():  # training never sees the held-out files
        index = json.loads((out / "shards" / f"{kind}.json").read_text())
        assert index["excluded"] == len(names) and index["samples"] == {"content": 24, "style": 12}[kind] - len(names)
        sources = set()
        for shard in index["shards"]:
            with tarfile.open(out / "shards" / shard["name"]) as tar:
                sources |= {json.load(tar.extractfile(m))["source"] for m in tar.getmembers() if m.name.endswith(".json")}
        assert not sources & set(names) and len(sources) == index["samples"]

    assert (out / "checkpoints" / "decoder.safetensors").is_file()
    report = json.loads((out / "evaluation" / "evaluation.json").read_text())
    assert [row["spec"] for row in report["methods"]] == ["identity", "style", "adain"]
    assert report["meta"]["pairs"] == 2 and report["methods"][0]["content_loss"] == 0  # 1 held-out photo × 2 paintings
    assert (out / "evaluation" / "grid.jpg").is_file()

    again = recipe(*args)  # up-to-date shards are reused; training resumes from last.ckpt (already at its end)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "make_shards.py" not in again.stderr and "--ckpt_path last" in again.stderr


def test_missing_folders_are_usage_errors(tmp_path: Path):
    proc = recipe("--content", str(tmp_path / "none"), "--style", str(tmp_path), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"{tmp_path / 'none'}: no such folder")
    assert not (tmp_path / "run").exists()


def test_relative_paths_are_the_callers_wherever_it_runs(tmp_path: Path):
    """Folders, --out and --config relative to the folder the recipe runs in, not to the checkout:
    the split, both shard sets and train.py's parsing of the config (a step count that trains
    nothing then stops it, before any training)."""
    write_images(tmp_path / "c", 3, seed=5)
    write_images(tmp_path / "s", 3, seed=6)
    shutil.copy(ROOT / "configs" / "smoke.yaml", tmp_path / "mine.yaml")
    proc = recipe("--content", "c", "--style", "s", "--out", "o", "--config", "mine.yaml", "--", "--trainer.max_steps", "0", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --trainer.max_steps 0 trains nothing")
    assert all(json.loads((tmp_path / "o" / "shards" / f"{kind}.json").read_text())["samples"] == 3 for kind in ("content", "style"))


def test_a_held_out_name_is_held_out_in_every_subfolder(tmp_path: Path):
    name = "n04501370_turnstile.webp"
    assert held_out(name, VALIDATION_FRACTION["content"])
    folder, out = tmp_path / "content", tmp_path / "run"
    for path in (f"a/{name}", f"b/{name}", "a/kept.webp"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(path.encode())  # split and shard() only look at names
    images = make_shards.find_images(folder)[0]
    held = train_from_folders.split(folder, images, "content", out)
    assert held == [f"a/{name}", f"b/{name}"]
    links = {p.name: p.read_bytes() for p in (out / "validation" / "content").iterdir()}
    assert links == {f"a%2F{name}": f"a/{name}".encode(), f"b%2F{name}": f"b/{name}".encode()}  # one link each
    command, _ = train_from_folders.shard(folder, images, "content", out, held, 512)
    listing = Path(command[command.index("--exclude") + 1]).read_text().split()
    assert listing == held  # both left out of the training shards


def test_shards_are_made_again_when_a_file_changes(tmp_path: Path):
    folder, out = tmp_path / "content", tmp_path / "run"
    images = write_images(folder, 3, seed=1)
    (out / "validation").mkdir(parents=True)
    command, _ = train_from_folders.shard(folder, images, "content", out, [], 48)
    assert make_shards.main([*command[2:], "--workers", "1"]) == 0  # no worker forked from pytest's threads
    assert train_from_folders.shard(folder, images, "content", out, [], 48)[0] == []  # current: reused
    write_images(folder, 1, (40, 40), seed=2)  # same names and count, another picture
    assert train_from_folders.shard(folder, images, "content", out, [], 48)[0] == command


def test_without_a_gpu_the_cpu_recipe_runs_at_the_precision_the_cpu_is_fast_in(monkeypatch):
    """bf16-mixed + channels-last only where torch reports bf16 hardware (AMX here); fp32 elsewhere,
    where bf16 is emulated and slower. Given configs and CUDA keep their own settings."""
    import adain.core.device

    for amx, precision, layout in ((True, "bf16-mixed", "true"), (False, "32-true", "false")):
        monkeypatch.setattr(adain.core.device.torch.cpu, "get_capabilities", lambda amx=amx: {"amx_bf16": amx})
        args, why = train_from_folders.training_configs(None, cuda=False)
        assert args[args.index("--trainer.precision") + 1] == precision
        assert args[args.index("--model.channels_last") + 1] == layout
        assert str(ROOT / "configs" / "cpu.yaml") in args and ("has bf16 matrix units (AMX)" in why) == amx
    assert train_from_folders.training_configs(None, cuda=True) == (["--config", str(ROOT / "configs" / "adain.yaml")], None)
    assert train_from_folders.training_configs(["a.yaml"], cuda=False) == (["--config", "a.yaml"], None)


def test_the_cpu_recipe_is_a_config_train_py_accepts():
    """configs/cpu.yaml after adain.yaml parses (a misspelt key would fail) and sets the recipe."""
    import yaml

    args, _ = train_from_folders.training_configs(None, cuda=False)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "fit", *args, "--data.content_shards", "c", "--data.style_shards", "s", "--print_config"],
        capture_output=True, text=True, env=ENV, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = yaml.safe_load(proc.stdout)
    assert config["trainer"]["accelerator"] == "cpu" and config["data"]["crop_size"] == 128
    assert config["model"]["recon_steps"] > 0 and config["model"]["style_weight_end"] == 10.0
