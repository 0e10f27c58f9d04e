"""How fast the decoder trains under each set-up: steps/s and pairs/s of train.py's own loop.

    python scripts/train_speed.py --content-shards 'runs/x/shards/content-{000000..000001}.tar' \\
        --style-shards 'runs/x/shards/style-{000000..000001}.tar' --out docs/training/speed.md

A set-up is a comma-separated list of ``fp32`` or ``bf16`` (autocast), ``nhwc`` (channels-last),
``memory`` (decoded images held in memory; otherwise ``--workers`` loader processes decode every
crop), ``compile`` (``torch.compile``) and ``bN`` (batch N; default 8, the paper's). Each runs
the real :class:`~adain.training.module.AdaINTraining` and :class:`~adain.training.data.AdaINDataModule` under a
Lightning Trainer for ``--warmup`` steps (compilation, allocator, loader start-up), then
``--steps`` timed steps, waiting for the device at both ends, with cuDNN's autotuner on (as in
``configs/gpu.yaml``). The batch size does not change the learning rate here: speed does not
depend on it. Each row also gives the mean training loss of the timed steps, the check that a
set-up still trains (the same data and seed in every set-up, so the rows are alike).

``--best-config FILE`` writes the fastest set-up whose loss is finite as a ``train.py`` config, to
give after ``--base-config`` (default ``configs/adain.yaml``) and ``configs/gpu.yaml``. A larger
batch than the base's takes the learning rate times the square root of the batch ratio (the
square-root rule for Adam: Malladi et al., NeurIPS 2022) and the decay times the ratio, so the
schedule follows the pairs seen, not the steps.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import yaml

from adain.core.commandline import report_file, run_main
from adain.core.device import device_name
from adain.core.errors import UsageError, one_line
from adain.training.data import AdaINDataModule, MemoryImages
from adain.training.module import AdaINTraining
from compare.benchmark import sync
from compare.report import write_text

BASE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "adain.yaml"
DEFAULT_SETUPS = [
    "fp32", "bf16", "bf16,nhwc", "bf16,nhwc,memory", "bf16,nhwc,memory,compile",
    "bf16,nhwc,memory,compile,b16", "bf16,nhwc,memory,compile,b32",
]  # fmt: skip
FLAGS = ("fp32", "bf16", "nhwc", "memory", "compile")


@dataclass(frozen=True)
class Setup:
    """One training set-up to time."""

    name: str
    precision: str = "32-true"
    channels_last: bool = False
    in_memory: bool = False
    compile: bool = False
    batch: int = 8


def parse_setup(text: str) -> Setup:
    """``bf16,nhwc,b16`` → :class:`Setup`; ValueError names what is unknown."""
    settings: dict[str, object] = {}
    for flag in text.split(","):
        if flag in ("fp32", "bf16"):
            settings["precision"] = "32-true" if flag == "fp32" else "bf16-mixed"
        elif flag in FLAGS:
            settings[{"nhwc": "channels_last", "memory": "in_memory"}.get(flag, flag)] = True
        elif flag[:1] == "b" and flag[1:].isdigit() and int(flag[1:]) > 0:
            settings["batch"] = int(flag[1:])
        else:
            raise ValueError(f"{text!r}: unknown {flag!r} (known: {', '.join(FLAGS)}, bN)")
    return Setup(text, **settings)  # type: ignore[arg-type]


class StepClock(L.Callback):
    """Times the steps after ``warmup``, waiting for the device at both ends."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.first_step_s = 0.0
        self.begin = self.start = self.end = 0.0
        self.loss_sum: torch.Tensor | float = 0.0  # of the timed steps, summed on the device (no waits)

    def _now(self, module: L.LightningModule) -> float:
        sync(module.device)
        return time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.begin = self._now(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, *_: object) -> None:
        if trainer.global_step > self.warmup:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.loss_sum = self.loss_sum + loss.detach().float()
        if trainer.global_step == 1:
            self.first_step_s = self._now(pl_module) - self.begin
        if trainer.global_step == self.warmup:
            self.start = self._now(pl_module)
        if trainer.global_step == trainer.max_steps:
            self.end = self._now(pl_module)


def measure(setup: Setup, args: argparse.Namespace, memory: dict[str, MemoryImages]) -> dict[str, object]:
    """Steps/s, pairs/s, peak device memory and first-step seconds of one set-up."""
    dm = AdaINDataModule(
        args.content_shards, args.style_shards, batch_size=setup.batch, load_size=args.load_size,
        crop_size=args.crop_size, num_workers=0 if setup.in_memory else args.workers, in_memory=setup.in_memory,
    )  # fmt: skip
    if setup.in_memory:  # decode once for all set-ups
        if not memory:
            dm.setup("fit")
            memory.update(content=dm.content, style=dm.style)
        dm.content, dm.style = memory["content"], memory["style"]
    L.seed_everything(0, verbose=False)  # the same decoder to start from in every set-up
    model = AdaINTraining(image_every_n_steps=0, channels_last=setup.channels_last, compile=setup.compile)
    clock = StepClock(args.warmup)
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=1, precision=setup.precision, max_steps=args.warmup + args.steps,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[clock], default_root_dir=args.scratch, log_every_n_steps=50, benchmark=True,
    )  # fmt: skip
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, dm)
    steps_s = args.steps / (clock.end - clock.start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    return {
        "setup": setup.name, "batch": setup.batch, "steps_s": steps_s, "pairs_s": steps_s * setup.batch,
        "peak_gib": peak, "first_step_s": clock.first_step_s, "loss": float(clock.loss_sum) / args.steps,
    }  # fmt: skip


def table(rows: Sequence[dict[str, object]]) -> str:
    lines = [
        "| set-up | batch | steps/s | pairs/s | peak device memory (GiB) | first step (s) | mean loss |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        numbers = (f"{r['steps_s']:.1f}", f"{r['pairs_s']:.1f}", f"{r['peak_gib']:.2f}", f"{r['first_step_s']:.1f}")
        cells = (r["setup"], r["batch"], *numbers, f"{r['loss']:.4g}")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def best_config(
    rows: Sequence[dict[str, object]], setups: Sequence[Setup], base: dict, workers: int, measured: str
) -> str | None:
    """The fastest (pairs/s) set-up with a finite mean loss as a train.py config given after ``base``
    (a parsed train.py config): batch, precision, layout, compile, data, and the learning rate and its
    decay rescaled for the batch; None while no set-up has trained to a finite loss."""
    timed = [(row, setup) for row, setup in zip(rows, setups) if math.isfinite(row["loss"])]  # type: ignore[arg-type]
    if not timed:
        return None
    row, setup = max(timed, key=lambda pair: pair[0]["pairs_s"])  # type: ignore[arg-type, return-value]
    model, data = base.get("model", {}), base.get("data", {})
    ratio = setup.batch / data.get("batch_size", 8)
    config = {
        "trainer": {"precision": setup.precision},
        "model": {
            "channels_last": setup.channels_last, "compile": setup.compile,
            "lr": float(model.get("lr", 1e-4)) * math.sqrt(ratio), "lr_decay": float(model.get("lr_decay", 5e-5)) * ratio,
        },
        "data": {"batch_size": setup.batch, "in_memory": setup.in_memory, "num_workers": 0 if setup.in_memory else workers},
    }  # fmt: skip
    head = (
        f"# The fastest set-up that trained (finite loss) in scripts/train_speed.py: {setup.name}, "
        f"{row['pairs_s']:.1f} pairs/s.\n# {measured}\n# Learning rate ×√{ratio:g} and decay ×{ratio:g} "
        "for the batch (see the script's docstring).\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content-shards", required=True, metavar="PATTERN")
    p.add_argument("--style-shards", required=True, metavar="PATTERN")
    p.add_argument("--setups", nargs="+", default=DEFAULT_SETUPS, metavar="SETUP", help="default: " + " ".join(DEFAULT_SETUPS))
    p.add_argument("--warmup", type=int, default=30, help="untimed steps first (default 30)")
    p.add_argument("--steps", type=int, default=300, help="timed steps (default 300)")
    p.add_argument("--workers", type=int, default=8, help="loader processes without 'memory' (default 8)")
    p.add_argument("--load-size", type=int, default=0, help="data.load_size (default 0: as stored)")
    p.add_argument("--crop-size", type=int, default=256, help="data.crop_size (default 256)")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator (default auto)")
    p.add_argument("--scratch", type=Path, default=Path("runs/train_speed"), help="Lightning's working folder")
    p.add_argument("--out", type=report_file, help="also write the report here (Markdown)")
    p.add_argument("--best-config", type=report_file, metavar="YAML", help="write the fastest set-up here as a train.py config")
    p.add_argument(
        "--base-config", type=Path, default=BASE_CONFIG, metavar="YAML",
        help="the config --best-config follows: its batch, learning rate and decay are rescaled (default configs/adain.yaml)",
    )  # fmt: skip
    return p


def write_reports(
    args: argparse.Namespace, rows: list[dict[str, object]], setups: Sequence[Setup], base: dict, measured: str
) -> bool:
    """``--out`` and ``--best-config`` as they stand, rewritten after each set-up so that a run cut
    short (a time limit on a lent GPU) keeps what it measured; whether a best set-up was written."""
    if args.out is not None:
        write_text(args.out, f"{measured}\n\n{table(rows)}\n")
    config = best_config(rows, setups, base, args.workers, measured) if args.best_config is not None else None
    if config is not None:
        write_text(args.best_config, config)  # whole or not at all: a time limit may stop the run mid-write
    return config is not None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setups = [parse_setup(text) for text in args.setups]
    except ValueError as err:
        parser.error(str(err))
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    base: dict = {}
    if args.best_config is not None:
        try:
            base = yaml.safe_load(args.base_config.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            parser.error(f"--base-config: {one_line(err, last=True)}")
    device = torch.device("cuda" if torch.cuda.is_available() and args.accelerator in ("auto", "gpu", "cuda") else "cpu")
    measured = (
        f"Measured {datetime.date.today().isoformat()} on {device_name(device)}, torch {torch.__version__}, "
        f"Lightning {L.__version__}, crops {args.crop_size}², {args.warmup} warm-up + {args.steps} timed steps, "
        "`scripts/train_speed.py`."
    )
    memory: dict[str, MemoryImages] = {}
    rows = []
    best_written = False
    try:
        for setup in setups:
            rows.append(measure(setup, args, memory))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            best_written = write_reports(args, rows, setups, base, measured)
    except UsageError as err:  # data settings that can never train, as train.py says them: exit 2
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:  # missing or unreadable shards, a bad accelerator: one line
        print(f"error: {one_line(err, last=True)}", file=sys.stderr)
        return 1
    print(f"{measured}\n\n{table(rows)}\n")
    if args.best_config is not None:
        if not best_written:
            print("error: no set-up trained to a finite loss: no best set-up to write", file=sys.stderr)
            return 1
        print(f"fastest set-up written to {args.best_config}")
    return 0


if __name__ == "__main__":
    run_main(main)
