"""Thin a train.py run's ``metrics.csv`` into a small log for the repo: one row per window of steps.

    python scripts/training_log.py runs/adain/lightning_logs/version_*/metrics.csv --every 500 --out docs/training/log.csv

Each row gives the window's last step, the means over the window of the losses (content, style,
each style layer, total) and of the training speed, and the learning rate at its end: a batch's
losses are noisy, their mean over a few hundred steps is not. Several files (a run resumed into new
``version_N`` folders) are read as one log, ordered by step; a step logged twice keeps its last row.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adain.atomicfile import atomic_path  # noqa: E402
from adain.commandline import report_file, run_main  # noqa: E402
from adain.errors import one_line  # noqa: E402

MEANS = ("content", "style", "style_relu1_1", "style_relu2_1", "style_relu3_1", "style_relu4_1", "loss", "pairs_per_sec")
COLUMNS = ("step", *MEANS, "lr")


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
        lrs = [steps[s]["lr"] for s in members if "lr" in steps[s]]
        if lrs:
            row["lr"] = lrs[-1]
        rows.append(row)
    return rows


def write(rows: Sequence[dict[str, float | int]], out: Path) -> None:
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: v if isinstance(v, int) else f"{v:.4g}" for k, v in row.items()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="+", type=Path, help="metrics.csv files of one run (Lightning's CSVLogger)")
    parser.add_argument("--every", type=int, default=500, help="steps per row (default 500)")
    parser.add_argument("--out", type=report_file, required=True, help="the thinned log (CSV)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    try:
        rows = thin(read_logs(args.metrics), args.every)
        if not rows:
            raise ValueError(f"no train/ metrics in {', '.join(map(str, args.metrics))}")
        write(rows, args.out)
    except (OSError, ValueError, csv.Error) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(rows)} rows, steps up to {rows[-1]['step']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
