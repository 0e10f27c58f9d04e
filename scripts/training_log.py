"""Thin a train.py run's ``metrics.csv`` into a small log for the repo: one row per window of steps.

    python scripts/training_log.py runs/adain/lightning_logs/version_*/metrics.csv --every 500 --out log.csv
    python scripts/training_log.py runs/cpu/lightning_logs/version_*/metrics.csv --every 50 \
        --decoder runs/cpu/checkpoints/decoder.safetensors --append docs/training/log.csv

Each row gives the window's last step, the means over the window of the losses (content, style,
each style layer, the reconstruction terms, total) and of the training speed, and the learning
rate and λ at its end: a batch's losses are noisy, their mean over a few hundred steps is not.
Several files (a run resumed into new ``version_N`` folders) are read as one log, ordered by step;
a step logged twice keeps its last row.

``--decoder`` (the run's exported decoder) adds the stage's name, device and precision to each row
and counts its steps on from the stages before it, so that ``--append`` grows one log over every
stage a decoder has been through (``docs/training/log.csv``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adain.core.atomicfile import atomic_path  # noqa: E402
from adain.core.commandline import failed, report_file, run_main  # noqa: E402
from adain.model.decoder_file import read_metadata  # noqa: E402

MEANS = (
    "content", "style", "style_relu1_1", "style_relu2_1", "style_relu3_1", "style_relu4_1",
    "recon_pixel", "recon_features", "loss", "pairs_per_sec",
)  # fmt: skip
LAST = ("lr", "style_weight")  # their value at the window's end
COLUMNS = ("step", *MEANS, *LAST)
STAGE_COLUMNS = ("stage", *COLUMNS, "device", "precision")  # with --decoder


def read_logs(paths: Iterable[Path]) -> dict[int, dict[str, float]]:
    """The ``train/…`` values of every logged step, by step (a later file's row replaces an earlier one)."""
    steps: dict[int, dict[str, float]] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                values = {k.removeprefix("train/"): float(v) for k, v in row.items() if k.startswith("train/") and v}
                if values and row.get("step"):
                    steps.setdefault(int(row["step"]), {}).update(values)
    return steps


def thin(steps: dict[int, dict[str, float]], every: int) -> list[dict[str, float | int]]:
    """One row per window of ``every`` steps (``step // every``) that logged anything."""
    windows: dict[int, list[int]] = {}
    for step in sorted(steps):
        windows.setdefault(step // every, []).append(step)
    rows = []
    for members in windows.values():
        row: dict[str, float | int] = {"step": members[-1]}
        for name in MEANS:
            values = [steps[s][name] for s in members if name in steps[s]]
            if values:
                row[name] = sum(values) / len(values)
        for name in LAST:
            values = [steps[s][name] for s in members if name in steps[s]]
            if values:
                row[name] = values[-1]
        rows.append(row)
    return rows


def stage_of(decoder: Path) -> tuple[dict[str, str], int]:
    """The last training stage a decoder file records (name, device, precision) and the steps of
    the stages before it."""
    stages = json.loads(read_metadata(decoder).get("stages", "[]"))
    if not stages:
        raise ValueError(f"{decoder}: records no training stages (not exported by this train.py)")
    *before, last = stages
    facts = {"stage": last["stage"], "device": last.get("device", ""), "precision": last.get("precision", "")}
    return facts, sum(int(stage["steps"]) for stage in before)


def write(rows: Sequence[dict[str, float | int | str]], out: Path, columns: Sequence[str], append: bool = False) -> None:
    """Write ``rows`` (after the rows ``out`` has, with ``append``) as CSV, atomically."""
    kept = out.read_text(encoding="utf-8").splitlines(keepends=True) if append and out.is_file() else []
    if kept and kept[0].rstrip("\n").split(",") != list(columns):
        raise ValueError(f"{out}: its columns are not {','.join(columns)}")
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        f.writelines(kept)
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        if not kept:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: v if isinstance(v, (int, str)) else f"{v:.4g}" for k, v in row.items()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="+", type=Path, help="metrics.csv files of one run (Lightning's CSVLogger)")
    parser.add_argument("--every", type=int, default=500, help="steps per row (default 500)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=report_file, help="the thinned log (CSV)")
    out.add_argument("--append", type=report_file, metavar="CSV", help="add the rows to this log (needs --decoder)")
    parser.add_argument("--decoder", type=Path, help="the run's exported decoder: stage, device, precision, steps before")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    if args.append and not args.decoder:
        parser.error("--append needs --decoder (the stage its rows belong to)")
    try:
        rows: list[dict[str, float | int | str]] = list(thin(read_logs(args.metrics), args.every))
        if not rows:
            raise ValueError(f"no train/ metrics in {', '.join(map(str, args.metrics))}")
        columns: Sequence[str] = COLUMNS
        if args.decoder:
            facts, before = stage_of(args.decoder)
            rows = [{**row, **facts, "step": before + int(row["step"])} for row in rows]
            columns = STAGE_COLUMNS
        write(rows, args.append or args.out, columns, append=bool(args.append))
    except (OSError, ValueError, KeyError, csv.Error) as err:
        return failed(err)
    print(f"wrote {args.append or args.out}: {len(rows)} rows, steps up to {rows[-1]['step']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
