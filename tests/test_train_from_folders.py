"""scripts/train_from_folders.py: split, shards, training, export and evaluation in one command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from test_shards import write_images

from adain.split import VALIDATION_FRACTION, validation_names

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def recipe(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "train_from_folders.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300, cwd=ROOT, check=False)


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
